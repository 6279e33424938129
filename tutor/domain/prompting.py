"""What the student model is asked to do for one tutor turn.

Two prompt formats, named by the model that reads them:
- "instruct": any chat model (the untrained base, a teacher): the planner's move and its own
  phrasing go in the system prompt, and the model is asked to say it in its own words.
- "moves": our distilled students, trained on human tutoring dialogues. The system prompt holds
  the problem and its verified steps; each learner message carries the planner's note (how the
  message was judged, which step is next); each tutor turn starts with its move tag
  (`[focus] ...`), which the planner forces or lets the model choose among allowed moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from tutor.domain.problems import Problem

INSTRUCT, MOVES_FORMAT = "instruct", "moves"
# The moves format with the planner's whole decision in each note (the learner's grade, what
# the tutor should do, the step in focus as a sentence with a blank): students from v2 on.
DECISION_FORMAT = "moves+decision"
# The moves format with the planner's own turn in each note: the student says it in its words,
# carrying the same verdict, hint and question (students from v6 on).
SPINE_FORMAT = "moves+spine"
MOVES_FORMATS = (MOVES_FORMAT, DECISION_FORMAT, SPINE_FORMAT)
PLANNER_FORMAT = "planner"  # no model: the planner's own words are the turn

# Small models lose the thread with long contexts, and on a CPU the prompt's prefill is most of
# a turn's cost: the planner keeps the state, so the model sees only the recent turns, each cut
# to its end.
HISTORY_TURNS = 4
MOVES_HISTORY_TURNS = 8  # the trained student was trained on whole dialogues: give it more
TURN_CHARS = 300

SOCRATIC_SYSTEM_PROMPT = """\
You are a patient math tutor for a 7th-grade learner. Tutor Socratically:
- Never give the final answer and never solve the whole problem for the learner.
- Ask one short guiding question at a time about the next step.
- Keep each reply to one or two sentences. Write math in LaTeX between \\( and \\) when useful.

The problem the learner is working on:
{question}"""

MOVE_INSTRUCTION = """
Your next move is {move} ({intent}). Say this to the learner in your own words, without adding \
any other numbers: "{planned}\""""

EXEMPLARS = "\nHow human tutors phrased such a move:\n{lines}"

STUDENT_SYSTEM_PROMPT = """\
You are a patient math tutor for a 7th-grade learner. Guide them one small step at a time with \
short questions; never give the final answer.
Problem: {question}
Solution steps: {steps}"""

NO_STEPS = "none verified; ask the learner to explain each step"

_TAG = re.compile(r"^\s*\[?\s*([a-z]+)\s*\]\s?")


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" (the learner) or "assistant" (the tutor)
    content: str


@dataclass(frozen=True)
class Said:
    """One turn of the dialogue so far, as a prompt shows it."""

    role: str  # "learner" or "tutor"
    text: str
    note: str = ""  # learner turns: the planner's note; tutor turns: the move (moves format)


def _clip(text: str) -> str:
    return text if len(text) <= TURN_CHARS else "…" + text[-TURN_CHARS:]


def tutoring_messages(
    problem: Problem,
    history: Sequence[Said],
    *,
    move: str | None = None,
    intent: str = "",
    planned: str = "",
    exemplars: Sequence[str] = (),
) -> list[ChatMessage]:
    """Instruct format: instructions, the planned move, then the recent dialogue.

    `history` ends with the learner message the tutor answers (if any).
    """
    system = SOCRATIC_SYSTEM_PROMPT.format(question=problem.question)
    if move:
        system += MOVE_INSTRUCTION.format(move=move, intent=intent.replace("_", " "), planned=planned)
    if exemplars:
        system += EXEMPLARS.format(lines="\n".join(f"- {line}" for line in exemplars))
    return [ChatMessage("system", system)] + [
        ChatMessage("user" if said.role == "learner" else "assistant", _clip(said.text))
        for said in list(history)[-HISTORY_TURNS:]
    ]


def move_tag(move: str) -> str:
    return f"[{move}] "


def read_move_tag(text: str) -> tuple[str | None, str]:
    """(move, the text after the tag) of a moves-format tutor turn; (None, text) without a tag."""
    found = _TAG.match(text)
    if not found:
        return None, text
    return found.group(1), text[found.end():]


def student_system_prompt(problem: Problem, step_expressions: Sequence[str]) -> str:
    steps = "; ".join(f"{i}) {e}" for i, e in enumerate(step_expressions, 1)) or NO_STEPS
    return STUDENT_SYSTEM_PROMPT.format(question=problem.question, steps=steps)


def student_messages(problem: Problem, step_expressions: Sequence[str], history: Sequence[Said],
                     *, turns: int | None = MOVES_HISTORY_TURNS) -> list[ChatMessage]:
    """Moves format: the problem and its steps, then the dialogue with notes and move tags.

    Training renders whole dialogues (`turns=None`); a live turn shows the recent ones.
    """
    recent = list(history)[-turns:] if turns else list(history)
    messages = [ChatMessage("system", student_system_prompt(problem, step_expressions))]
    for said in recent:
        if said.role == "learner":
            content = _clip(said.text) + (f"\n{said.note}" if said.note else "")
            messages.append(ChatMessage("user", content))
        else:
            text = _clip(said.text) if turns else said.text  # training targets stay whole
            messages.append(ChatMessage("assistant", (move_tag(said.note) if said.note else "") + text))
    return messages


def next_turn_start(problem: Problem, step_expressions: Sequence[str], history: Sequence[Said]) -> list[ChatMessage]:
    """The start of the next live turn's moves-format prompt, known before the learner writes:
    the problem, then the turns that will still be shown beside their next message."""
    return student_messages(problem, step_expressions, history, turns=MOVES_HISTORY_TURNS - 1)
