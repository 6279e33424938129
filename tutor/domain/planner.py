"""The scaffolding planner: an explicit state machine per conversation.

plan(state, grade, ...) -> (next state, move). Deterministic and pure: the same learner input in
the same state always yields the same move, and the state is stored with every tutor message so
teachers can see why the tutor said what it said.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

from tutor.domain.grading import Grade, LearnerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.steps import Step

# The hint ladder, by hint level on the current step (0: no hint yet).
PUMP, FOCUS, PARTIAL, BOTTOM_OUT = 1, 2, 3, 4
RUNGS = {0: "question", PUMP: "pump", FOCUS: "focus", PARTIAL: "partial", BOTTOM_OUT: "bottom_out"}


@dataclass(frozen=True)
class PlannerState:
    step: int = 0  # index of the step the learner is working on
    attempts: int = 0  # failed attempts (wrong, partial, stuck) on the current step
    hint_level: int = 0  # highest rung of the hint ladder given on the current step
    solved: bool = False
    learner_state: str | None = None  # how the last learner message was judged
    known_values: tuple[str, ...] = ()  # values the learner produced or was shown (as text)
    completed: tuple[int, ...] = ()  # steps done, in order

    def to_json(self) -> dict:
        return asdict(self) | {"known_values": list(self.known_values), "completed": list(self.completed)}

    @classmethod
    def from_json(cls, record: dict | None) -> PlannerState:
        if not record:
            return cls()
        fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        fields["known_values"] = tuple(fields.get("known_values", ()))
        fields["completed"] = tuple(fields.get("completed", ()))
        return cls(**fields)

    def with_known(self, *values: Fraction) -> PlannerState:
        known = list(self.known_values)
        known += [str(v) for v in values if str(v) not in known]
        return replace(self, known_values=tuple(known))


@dataclass(frozen=True)
class Move:
    """What the tutor does next. `move` uses MathDial's taxonomy."""

    move: str  # focus | probing | telling | generic
    intent: str  # why, in the planner's words (e.g. "praise_then_next_step", "ask_to_explain")
    hint_level: int  # rung of the ladder this turn gives (0: none)
    step: int | None  # the step it is about
    reveals: tuple[str, ...] = field(default_factory=tuple)  # values this turn may state

    @property
    def rung(self) -> str:
        return RUNGS[self.hint_level]

    def to_json(self) -> dict:
        return asdict(self) | {"reveals": list(self.reveals), "rung": self.rung}

    @classmethod
    def from_json(cls, record: dict) -> Move:
        fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        return cls(**fields | {"reveals": tuple(fields.get("reveals", ()))})


def plan(
    state: PlannerState,
    grade: Grade | None,
    steps: tuple[Step, ...],
    policy: RevealPolicy,
    *,
    hint_requested: bool = False,
) -> tuple[PlannerState, Move]:
    """The next state and move. `grade` is None when the learner only pressed "Hint"."""
    if state.solved:
        return state, Move("generic", "already_solved", 0, None)
    if not steps:
        return _plan_without_steps(state, grade)
    if hint_requested or grade is None:
        return _climb(state, steps, policy, intent="hint_requested", count_attempt=False)

    state = replace(state, learner_state=grade.state.value)
    if grade.state is LearnerState.CORRECT:
        return _advance(state, grade, steps)
    if grade.state is LearnerState.PARTIAL:
        state = replace(state, attempts=state.attempts + 1)
        return state, Move("probing", "check_the_arithmetic", state.hint_level, state.step)
    if grade.state is LearnerState.INCORRECT:
        if state.attempts == 0:  # first wrong attempt: find the misconception before hinting
            state = replace(state, attempts=1)
            return state, Move("probing", "ask_to_explain", state.hint_level, state.step)
        return _climb(state, steps, policy, intent="hint_after_wrong_answer", count_attempt=True)
    if grade.state is LearnerState.STUCK:
        return _climb(state, steps, policy, intent="hint_when_stuck", count_attempt=True)
    if grade.state is LearnerState.ASKS_FOR_ANSWER:
        # Acknowledge, then focus; asking never counts as an attempt, so it never unlocks a reveal.
        level = min(max(state.hint_level, FOCUS), PARTIAL)
        state = replace(state, hint_level=level)
        return state, Move("focus", "decline_and_focus", level, state.step,
                           _reveals(level, steps[state.step]))
    if grade.state is LearnerState.QUESTION:
        return state, Move("focus", "answer_question_then_focus", state.hint_level, state.step)
    if grade.state is LearnerState.OFF_TOPIC:
        return state, Move("generic", "redirect_to_problem", state.hint_level, state.step)
    return state, Move("probing", "ask_to_clarify", state.hint_level, state.step)


def _advance(state: PlannerState, grade: Grade, steps: tuple[Step, ...]) -> tuple[PlannerState, Move]:
    done = grade.step_index if grade.step_index is not None else state.step
    values = [steps[i].value for i in range(state.step, done + 1)]
    state = state.with_known(*values)
    completed = state.completed + tuple(i for i in range(state.step, done + 1) if i not in state.completed)
    if grade.final or done >= len(steps) - 1:
        state = replace(state, step=len(steps), attempts=0, hint_level=0, solved=True, completed=completed)
        return state, Move("generic", "celebrate_solution", 0, None)
    state = replace(state, step=done + 1, attempts=0, hint_level=0, completed=completed)
    return state, Move("focus", "praise_then_next_step", 0, state.step)


def _climb(
    state: PlannerState, steps: tuple[Step, ...], policy: RevealPolicy, *, intent: str, count_attempt: bool
) -> tuple[PlannerState, Move]:
    """One rung up the hint ladder, as far as the reveal policy allows."""
    attempts = state.attempts + (1 if count_attempt else 0)
    last_step = state.step == len(steps) - 1
    # a step whose value is the final answer is revealed only as the final answer may be
    reveals_final = last_step or steps[state.step].value == steps[-1].value
    ceiling = BOTTOM_OUT if policy.allows_bottom_out(attempts, reveals_final) else PARTIAL
    level = min(state.hint_level + 1, ceiling)
    step = steps[state.step]
    state = replace(state, attempts=attempts, hint_level=level)
    if level == BOTTOM_OUT:
        # The learner is shown this step's value; they continue from the next step.
        state = state.with_known(step.value)
        move = Move("telling", "bottom_out", level, state.step, (str(step.value),))
        if last_step:
            return replace(state, solved=True, step=len(steps), completed=state.completed + (state.step,)), move
        return replace(state, step=state.step + 1, attempts=0, hint_level=0,
                       completed=state.completed + (state.step,)), move
    return state, Move("focus", intent, level, state.step, _reveals(level, step))


def _reveals(level: int, step: Step) -> tuple[str, ...]:
    # a partial hint names the step's operands (givens or earlier results), never its value
    return tuple(str(v) for v in step.operands) if level >= PARTIAL else ()


def _plan_without_steps(state: PlannerState, grade: Grade | None) -> tuple[PlannerState, Move]:
    """A learner's own problem with no verified solution: ask them to explain each step."""
    if grade is not None:
        state = replace(state, learner_state=grade.state.value)
        if grade.value is not None:
            state = state.with_known(grade.value)
    if grade is None:
        return state, Move("focus", "explain_your_step", 0, None)
    if grade.state is LearnerState.CORRECT:
        return state, Move("focus", "confirm_arithmetic_next_step", 0, None)
    if grade.state is LearnerState.PARTIAL:
        return state, Move("probing", "check_the_arithmetic", 0, None)
    if grade.state is LearnerState.OFF_TOPIC:
        return state, Move("generic", "redirect_to_problem", 0, None)
    return state, Move("probing", "explain_your_step", 0, None)
