"""Simulated learners for interactive evaluation (MathDial's Success@k / Telling@k).

The scripted learner is deterministic for a seed: it starts from the dialogue's incorrect
solution and holds on to its wrong answer, and gets a step right with a chance that grows with
the help it was given (no hint < pump < focus < partial); once shown a step it moves on.
It also reads the tutor's words: praise for its wrong value makes it keep that value, being
told its right value is wrong makes it doubt it, and a turn that names the step's quantities or
operation raises its chance of getting the step. So models that phrase the same plan
differently score differently. The LLM-played learner reads only the tutor's words.
"""

from __future__ import annotations

import math
import random
import zlib
from typing import Protocol

from tutor.domain.arithmetic import format_number, numbers_in
from tutor.domain.dialogues import Dialogue
from tutor.domain.faithfulness import affirms, is_about_step, negates
from tutor.domain.words import sentences
from tutor.domain.problems import Problem
from tutor.domain.prompting import ChatMessage
from tutor.domain.tutoring import TurnPlan, solution_steps
from tutor.model.backend import Backend, GenerationParams

# P(right) for the step being asked about, by the hint level of the tutor's turn.
P_RIGHT = {0: 0.3, 1: 0.35, 2: 0.5, 3: 0.8, 4: 0.8}
ABOUT_THE_STEP = 0.15  # added when the tutor's words name the step's quantities or operation
DOUBTED = 0.5  # P(right) is multiplied by this after its right value was called wrong


class SimulatedLearner(Protocol):
    def opening(self) -> str:
        """The learner's first message: their (wrong) solution."""
        ...

    def respond(self, tutor_text: str, turn: TurnPlan) -> str:
        ...


class ScriptedLearner:
    def __init__(self, problem: Problem, dialogue: Dialogue | None = None, seed: int = 0):
        """Without a dialogue (a bank problem nobody tutored yet) the learner's wrong answer is
        the last step's operands added up (or multiplied), a classic slip."""
        self.steps = solution_steps(problem)
        self.rng = random.Random(seed * 1_000_003 + zlib.crc32((dialogue.id if dialogue else problem.id).encode()))
        solution = dialogue.learner.incorrect_solution.strip() if dialogue else ""
        wrong = numbers_in(solution.splitlines()[-1] if solution else "")
        if not wrong and self.steps:
            last = self.steps[-1]
            wrong = [next(v for v in (sum(last.operands), math.prod(last.operands), last.value + 10)
                          if v != last.value)]
        self.wrong = format_number(wrong[-1]) if wrong else "7"
        self.last_right = False  # was its last message the right value?

    def opening(self) -> str:
        return f"I think the answer is {self.wrong}."

    def finished(self) -> bool:  # it answers for as long as the tutor asks
        return False

    def respond(self, tutor_text: str, turn: TurnPlan) -> str:
        state = turn.state
        if state.solved or not self.steps:
            return "Okay, thanks!"
        step = self.steps[min(state.step, len(self.steps) - 1)]
        said = sentences(tutor_text)[0] or [tutor_text]
        if not self.last_right and any(affirms(s) for s in said):
            return f"Great, so it is {self.wrong}."  # misled: it keeps its wrong value
        chance = P_RIGHT[turn.move.hint_level]
        if is_about_step(tutor_text, step):
            chance += ABOUT_THE_STEP
        if self.last_right and any(negates(s) for s in said):
            chance *= DOUBTED
        self.last_right = self.rng.random() < chance
        if self.last_right:
            return f"Is it {format_number(step.value)}{step.unit}?"
        return self.rng.choice([f"I still think it's {self.wrong}.", "I'm not sure.",
                                f"Maybe {self.wrong}?"])


class ReplayLearner:
    """A MathDial learner's own messages, in order, whatever the tutor says: real learners'
    words (long worked solutions, half-right reasoning, "I see, so 20 x 1 = 20") in the
    conversations our tutor leads, so the turns it writes there are on-policy."""

    def __init__(self, problem: Problem, dialogue: Dialogue, seed: int = 0):
        self.said = [turn.text for turn in dialogue.turns if turn.role == "learner" and turn.text.strip()]
        self.opening_text = dialogue.learner.incorrect_solution.strip() or (self.said.pop(0) if self.said else "")

    def opening(self) -> str:
        return self.opening_text or "I'm not sure how to start."

    def respond(self, tutor_text: str, turn: TurnPlan) -> str:
        return self.said.pop(0) if self.said else "Okay, thanks!"

    def finished(self) -> bool:
        return not self.said


LEARNER_PROMPT = """\
You are a 7th-grade student talking to a math tutor about this problem:
{question}
You first solved it like this (wrongly): {solution}
Your difficulty: {confusion}
Reply to the tutor in one or two short sentences, as the student. Try to follow the tutor's \
questions; if you work something out, say the number."""


class LLMLearner:
    """A learner played by a language model behind an OpenAI-compatible endpoint."""

    def __init__(self, backend: Backend, problem: Problem, dialogue: Dialogue, seed: int = 0):
        self.backend = backend
        self.params = GenerationParams(max_new_tokens=80, temperature=0.7, seed=seed)
        self.system = LEARNER_PROMPT.format(
            question=problem.question, solution=dialogue.learner.incorrect_solution,
            confusion=dialogue.learner.confusion or "not sure which operation to use")
        self.history: list[ChatMessage] = []

    def opening(self) -> str:
        text = self._say([ChatMessage("user", "Tutor: Please talk me through your solution.")])
        return text or "I'm not sure how to start."

    def respond(self, tutor_text: str, turn: TurnPlan) -> str:
        return self._say([ChatMessage("user", tutor_text)]) or "I'm not sure."

    def _say(self, new: list[ChatMessage]) -> str:
        # roles are swapped: for the learner model, the tutor is the user
        self.history += new
        reply = "".join(self.backend.generate([ChatMessage("system", self.system), *self.history],
                                              self.params)).strip()
        self.history.append(ChatMessage("assistant", reply))
        return reply
