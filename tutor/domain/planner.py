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

# The hint ladder, by hint level on the current step (0: no hint yet). PEDAGOGY.md's pump ("what
# do we know so far?") is kept as a level for stored turns, but the planner never climbs to it:
# every step is opened with its own question (the focus rung's content), so after that a pump is
# a step back, and the blind read found it the vaguest turn the tutor wrote ("idk" got
# "What do we know from the problem so far...?"). A climb goes focus -> partial -> bottom-out.
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
    # the most concrete rung the learner has seen on the current step: its opening question
    # (the blanked sentence) is the focus rung's content, so a hint after it starts above it
    asked: int = 0
    # turns in a row the current step has stayed on one rung (a learner asking for the answer
    # again at the partial rung): the planner says that rung another way, never the same twice
    same_rung: int = 0

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
        # a learner who asks for help has tried: hint presses count toward the reveal policy,
        # so three presses on a step end with its value where the policy allows that
        return _climb(state, steps, policy, intent="hint_requested", count_attempt=True)

    state = replace(state, learner_state=grade.state.value)
    if grade.state is LearnerState.CORRECT:
        return _advance(state, grade, steps)
    if grade.state is LearnerState.PARTIAL:
        state = replace(state, attempts=state.attempts + 1)
        # the learner wrote this step's calculation (or slipped a decimal place): checking it
        # names its operands, which the problem gave or earlier steps found
        return state, Move("probing", "check_the_arithmetic", state.hint_level, state.step,
                           _reveals(PARTIAL, steps[state.step]))
    if grade.state is LearnerState.INCORRECT:
        if state.attempts == 0:  # first wrong attempt: find the misconception before hinting
            state = replace(state, attempts=1)
            return state, Move("probing", "ask_to_explain", state.hint_level, state.step)
        return _climb(state, steps, policy, intent="hint_after_wrong_answer", count_attempt=True)
    if grade.state is LearnerState.STUCK:
        return _climb(state, steps, policy, intent="hint_when_stuck", count_attempt=True)
    if grade.state is LearnerState.ASKS_FOR_ANSWER:
        # Decline, then one rung more concrete, up to the partial hint: asking never counts as
        # an attempt, so it never unlocks a reveal.
        return _climb(state, steps, policy, intent="decline_and_focus", count_attempt=False, may_reveal=False)
    # no attempt: the step's question again at the rung it was at, said another way
    if grade.state is LearnerState.QUESTION:
        return _again(state, steps, "focus", "answer_question_then_focus")
    if grade.state is LearnerState.OFF_TOPIC:
        return _again(state, steps, "generic", "redirect_to_problem")
    return _again(state, steps, "probing", "ask_to_clarify")


def _advance(state: PlannerState, grade: Grade, steps: tuple[Step, ...]) -> tuple[PlannerState, Move]:
    if grade.step_index is None or (grade.step_index < state.step and not grade.final):
        # right, but no step forward: a valid step on another route, or a step done already;
        # confirmed, and the current step's question at the rung it was at
        if grade.value is None:  # the step's calculation, not worked out: the partial rung is theirs
            state = replace(state, asked=max(state.asked, PARTIAL))
        state = state.with_known(grade.value) if grade.value is not None else state
        return _again(state, steps, "focus", "confirm_then_focus", climb=False)
    done = grade.step_index
    values = [steps[i].value for i in range(state.step, done + 1)]
    state = state.with_known(*values)
    completed = state.completed + tuple(i for i in range(state.step, done + 1) if i not in state.completed)
    if grade.final or done >= len(steps) - 1:
        state = replace(state, step=len(steps), attempts=0, hint_level=0, solved=True, completed=completed)
        return state, Move("generic", "celebrate_solution", 0, None)
    state = _next_step(state, done + 1, completed)
    return state, Move("focus", "praise_then_next_step", 0, state.step)


def _next_step(state: PlannerState, step: int, completed: tuple[int, ...]) -> PlannerState:
    """On to `step`, which the turn opens with its question (the focus rung's content)."""
    return replace(state, step=step, attempts=0, hint_level=0, asked=FOCUS, same_rung=0, completed=completed)


def _again(state: PlannerState, steps: tuple[Step, ...], move: str, intent: str,
           climb: bool = True) -> tuple[PlannerState, Move]:
    """The current step's question again after a message with no attempt: at least its focus
    rung (the blanked sentence); once that was asked, the partial rung (asking it again would
    move the learner nowhere), said another way each time it comes again. `climb` False: the
    rung the learner is on (they did something right)."""
    seen = max(state.hint_level, state.asked)
    level = max(seen, FOCUS)
    if climb and FOCUS <= seen < PARTIAL:
        level = PARTIAL
    same = state.same_rung + 1 if level == seen else 0
    # the step's own question is no hint; a rung above it is
    hint_level = max(state.hint_level, level) if level > FOCUS else state.hint_level
    state = replace(state, asked=max(state.asked, level), hint_level=hint_level, same_rung=same)
    return state, Move(move, intent, level, state.step, _reveals(level, steps[state.step]))


def _climb(
    state: PlannerState, steps: tuple[Step, ...], policy: RevealPolicy, *, intent: str, count_attempt: bool,
    may_reveal: bool = True,
) -> tuple[PlannerState, Move]:
    """One rung above what the learner has seen on this step, as far as the reveal policy
    allows; at the top allowed rung, that rung again (said another way)."""
    attempts = state.attempts + (1 if count_attempt else 0)
    last_step = state.step == len(steps) - 1
    # a step whose value is the final answer is revealed only as the final answer may be
    reveals_final = last_step or steps[state.step].value == steps[-1].value
    allowed = may_reveal and policy.allows_bottom_out(attempts, reveals_final)
    ceiling = BOTTOM_OUT if allowed else PARTIAL
    seen = max(state.hint_level, state.asked, PUMP)
    level = min(seen + 1, ceiling)
    step = steps[state.step]
    same = state.same_rung + 1 if level <= seen else 0
    state = replace(state, attempts=attempts, hint_level=max(level, state.hint_level), asked=max(level, state.asked),
                    same_rung=same)
    if level == BOTTOM_OUT:
        # The learner is shown this step's value; they continue from the next step.
        state = state.with_known(step.value)
        move = Move("telling", "bottom_out", level, state.step, (str(step.value),))
        completed = state.completed + (state.step,)
        if last_step:
            return replace(state, solved=True, step=len(steps), completed=completed), move
        return _next_step(state, state.step + 1, completed), move
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
