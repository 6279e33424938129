"""One tutor turn decided in code: grade the learner, plan the move, phrase it, fence it.

Used by the service for live conversations and by the evaluation to replay dialogues, so both
judge and tutor exactly the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from tutor.domain.arithmetic import format_number, numbers_in
from tutor.domain.grading import Grade, grade
from tutor.domain.guard import GuardContext, GuardResult, check
from tutor.domain.hints import phrase
from tutor.domain.planner import BOTTOM_OUT, PARTIAL, Move, PlannerState, plan
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem
from tutor.domain.prompting import ChatMessage, tutoring_messages
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


def draft_fence(turn: TurnPlan) -> GuardContext:
    """The guard for a model's draft of this turn: the turn's number rules, plus it must be
    short and, for focus and probing moves, ask the learner something."""
    return replace(turn.guard, requires_question=turn.move.move in ("focus", "probing"),
                   max_chars=MAX_TURN_CHARS)


def judge_draft(draft: str, turn: TurnPlan) -> tuple[str, GuardResult]:
    """The text to send (the draft if it passes the guard, else the planner's) and the verdict."""
    draft = draft.strip()
    verdict = check(draft, draft_fence(turn)) if draft else GuardResult(("is empty",))
    return (draft if verdict.ok else turn.planned_text), verdict


def turn_messages(problem: Problem, turn: TurnPlan, history: list[tuple[str, str]],
                  exemplars: list[str] = ()) -> list[ChatMessage]:
    """What the student model is asked for this turn: phrase the planned move."""
    return tutoring_messages(problem, history, move=turn.move.move, intent=turn.move.intent,
                             planned=turn.planned_text, exemplars=exemplars)
