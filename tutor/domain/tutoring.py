"""One tutor turn decided in code: grade the learner, plan the move, phrase it, fence it.

Used by the service for live conversations and by the evaluation to replay dialogues, so both
judge and tutor exactly the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

from tutor.domain.arithmetic import format_number, numbers_in
from tutor.domain.dialogues import Dialogue, Turn
from tutor.domain.grading import Grade, grade
from tutor.domain.guard import GuardContext, GuardResult, check
from tutor.domain.hints import phrase
from tutor.domain.planner import BOTTOM_OUT, PARTIAL, Move, PlannerState, plan
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem
from tutor.domain.prompting import (
    INSTRUCT,
    MOVES_FORMAT,
    ChatMessage,
    Said,
    move_tag,
    read_move_tag,
    student_messages,
    tutoring_messages,
)
from tutor.domain.steps import Step, final_answer_value, worked_solution


SAFE_FOCUS = "Which numbers from the problem do we need for this step, and what should we do with them?"


@dataclass(frozen=True)
class TurnPlan:
    state: PlannerState  # after this turn
    move: Move
    planned_text: str  # the planner's own phrasing: the fallback if a model draft fails the guard
    grade: Grade | None
    guard: GuardContext


def solution_steps(problem: Problem) -> tuple[Step, ...]:
    """The verified steps, or none (then the tutor asks the learner to explain each step)."""
    solution = worked_solution(problem)
    return solution.steps if solution.verified else ()


def givens(problem: Problem) -> frozenset[Fraction]:
    return frozenset(numbers_in(problem.question))


def plan_turn(
    problem: Problem,
    state: PlannerState,
    learner_text: str | None,
    policy: RevealPolicy,
    *,
    hint_requested: bool = False,
) -> TurnPlan:
    steps = solution_steps(problem)
    final = final_answer_value(problem) if steps else None
    given = givens(problem)
    judged = None
    if learner_text is not None:
        judged = grade(learner_text, steps, min(state.step, len(steps)), final, set(given), problem.question)
        # whatever the learner said, the tutor may say back to them
        state = state.with_known(*numbers_in(learner_text))
    state, move = plan(state, judged, steps, policy, hint_requested=hint_requested)
    learner_value = format_number(judged.value) if judged and judged.value is not None else None
    text = phrase(move, steps, learner_value)
    reveals = frozenset(Fraction(value) for value in move.reveals)
    guard = GuardContext(
        final_answer=final,
        # once solved (by the learner, or revealed as the policy allowed) it is no secret; a
        # step whose value is the answer may be shown only when the policy allowed that
        final_allowed=state.solved or (move.hint_level >= BOTTOM_OUT and final in reveals),
        allowed=given | reveals | frozenset(Fraction(v) for v in state.known_values),
        question_expression_ok=move.hint_level >= PARTIAL,
    )
    if not check(text, guard).ok:
        # defence in depth: the planner's own words pass the same guard as a model's
        text = SAFE_FOCUS
    return TurnPlan(state, move, text, judged, guard)


MAX_TURN_CHARS = 400


def draft_fence(turn: TurnPlan, move: str | None = None) -> GuardContext:
    """The guard for a model's draft of this turn: the turn's number rules, plus it must be
    short and, for focus and probing moves, ask the learner something."""
    move = move or turn.move.move
    return replace(turn.guard, requires_question=move in ("focus", "probing"), max_chars=MAX_TURN_CHARS)


HINT_REQUESTED = "asks_for_hint"  # the learner state of a turn the learner asked a hint for


def learner_label(turn: TurnPlan) -> str:
    """How the learner's message was judged (stored with the tutor turn)."""
    return turn.grade.state.value if turn.grade else HINT_REQUESTED


def note(learner: str, state: PlannerState, steps: int) -> str:
    """What the planner tells a trained student about a learner message (moves format)."""
    if state.solved:
        where = "problem solved"
    elif steps:
        where = f"next: step {min(state.step, steps - 1) + 1} of {steps}"
    else:
        where = "no verified steps"
    return f"(learner: {learner.replace('_', ' ')}; {where})"


def planner_note(turn: TurnPlan, steps: int) -> str:
    return note(learner_label(turn), turn.state, steps)


def move_choices(turn: TurnPlan, hint_requested: bool = False) -> tuple[str, ...]:
    """The moves a trained student may open this turn with; the first is the planner's own.

    The planner decides what may be revealed; within that, the student (trained on human
    teachers) picks the move. A hint request, a bottom-out, a celebration or a redirect is the
    planner's alone; a partial hint may also be told outright (it reveals only operands).
    """
    move = turn.move
    if hint_requested or move.move == "telling" or move.intent in ("celebrate_solution", "redirect_to_problem"):
        return (move.move,)
    if move.intent == "already_solved":
        return ("generic", "focus", "probing")
    others = ("focus", "probing") + (("telling",) if move.hint_level >= PARTIAL else ())
    return (move.move,) + tuple(m for m in others if m != move.move)


@dataclass(frozen=True)
class TurnPrompt:
    """What the student model is asked for one turn, and how to read what it writes."""

    messages: list[ChatMessage]  # in the moves format the last is the tutor turn's forced start
    planned_move: str
    choices: tuple[str, ...] = ()  # moves format: the moves the model may open with
    format: str = INSTRUCT
    # the planner's own words for each move the model may choose: sent when its draft fails
    fallbacks: tuple[tuple[str, str], ...] = ()

    @property
    def constrained(self) -> bool:
        """The model picks its move: its first token must open one of `choices`."""
        return len(self.choices) > 1

    def fallback(self, move: str | None, turn: TurnPlan) -> tuple[str, str]:
        """(text, move) to send when the draft for `move` fails: the student still decided the
        move, the planner phrases it safely."""
        for choice, text in self.fallbacks:
            if choice == move:
                return text, move
        return turn.planned_text, turn.move.move

    def read(self, output: str) -> tuple[str | None, str]:
        """(move, text to show) of the model's output so far; move None until (or unless)
        the output opens with an allowed move tag."""
        if not self.constrained:
            return (self.choices[0] if self.choices else self.planned_move), output
        move, text = read_move_tag(output)
        return (move, text) if move in self.choices else (None, "")


def turn_prompt(problem: Problem, turn: TurnPlan, history: list[Said], *, exemplars: list[str] = (),
                prompt_format: str = INSTRUCT, hint_requested: bool = False) -> TurnPrompt:
    """The student's prompt for this turn; `history` ends with the learner message answered."""
    if prompt_format == MOVES_FORMAT:
        steps = solution_steps(problem)
        if history and history[-1].role == "learner":
            history = history[:-1] + [replace(history[-1], note=planner_note(turn, len(steps)))]
        choices = move_choices(turn, hint_requested)
        start = "[" if len(choices) > 1 else move_tag(choices[0])
        messages = student_messages(problem, [s.expression for s in steps], history)
        fallbacks = tuple((move, chosen_move_text(turn, move, steps)) for move in choices)
        return TurnPrompt(messages + [ChatMessage("assistant", start)], turn.move.move, choices, MOVES_FORMAT,
                          fallbacks)
    messages = tutoring_messages(problem, history, move=turn.move.move, intent=turn.move.intent,
                                 planned=turn.planned_text, exemplars=exemplars)
    return TurnPrompt(messages, turn.move.move)


def chosen_move_text(turn: TurnPlan, move: str, steps: tuple[Step, ...]) -> str:
    """The planner's phrasing of a move the student chose over the planner's own (same step,
    same hint rung, same reveals), held to the same guard."""
    if move == turn.move.move or move == "telling" or turn.state.solved or turn.move.step is None:
        return turn.planned_text  # telling is only offered on a partial rung: the planner's hint is one
    value = turn.grade.value if turn.grade else None
    if move == "probing":
        intent = "ask_to_explain" if value is not None else "ask_to_clarify"
    else:
        intent = "hint_when_stuck"  # a focus question at the turn's rung
    text = phrase(replace(turn.move, move=move, intent=intent), steps,
                  format_number(value) if value is not None else None)
    return text if check(text, turn.guard).ok else SAFE_FOCUS


@dataclass(frozen=True)
class Judged:
    text: str  # what the learner is sent: the draft if it passed the guard, else the planner's
    move: str  # the move that text makes
    verdict: GuardResult
    draft: str  # the model's words (without the move tag)


def judge_draft(output: str, turn: TurnPlan, prompt: TurnPrompt) -> Judged:
    """Judge a model's whole output for this turn."""
    move, draft = prompt.read(output)
    draft = draft.strip()
    if move is None:
        verdict, draft = GuardResult(("opens with no allowed move",)), output.strip()
    elif not draft:
        verdict = GuardResult(("is empty",))
    else:
        verdict = check(draft, draft_fence(turn, move))
    if verdict.ok:
        return Judged(draft, move, verdict, draft)
    text, move = prompt.fallback(move, turn)
    return Judged(text, move, verdict, draft)


@dataclass(frozen=True)
class ReplayedTurn:
    """A human teacher's turn of a recorded dialogue, with what our planner made of that point."""

    before: PlannerState  # the planner state the turn starts from
    learner_text: str | None  # the learner's messages since the previous teacher turn, joined
    plan: TurnPlan  # our planner's turn on that learner text
    teacher: Turn  # what the human teacher said (and the move label)
    learner_numbers: frozenset[Fraction]  # every number the learner has said so far

    def said(self, steps: int, teacher_text: str | None = None) -> list[Said]:
        """The turn as a later prompt's history shows it: the learner with the planner's note,
        the teacher with the move label."""
        learner = [Said("learner", self.learner_text, planner_note(self.plan, steps))] if self.learner_text else []
        tutor = Said("tutor", self.teacher.text if teacher_text is None else teacher_text,
                     self.teacher.move or "generic")
        return learner + [tutor]


def replay(problem: Problem, dialogue: Dialogue, policy: RevealPolicy) -> Iterator[ReplayedTurn]:
    """Walk a recorded dialogue through the planner: its state follows the learner's real
    messages, as in a live conversation (the dialogue opens with the learner's wrong solution)."""
    state = PlannerState()
    opening = dialogue.learner.incorrect_solution
    numbers = set(numbers_in(opening))
    pending = [opening] if opening else []
    for turn in dialogue.turns:
        if turn.role == "learner":
            pending.append(turn.text)
            numbers.update(numbers_in(turn.text))
            continue
        learner_text = " ".join(pending) if pending else None
        plan = plan_turn(problem, state, learner_text, policy, hint_requested=learner_text is None)
        yield ReplayedTurn(state, learner_text, plan, turn, frozenset(numbers))
        state, pending = plan.state, []
