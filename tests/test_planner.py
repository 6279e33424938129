"""Scripted learners on bank problems: the planner's moves, the ladder and the reveal policy."""

import random

import pytest

from tutor.config import PROBLEMS_FILE
from tutor.domain.arithmetic import format_number
from tutor.domain.guard import GuardContext, check
from tutor.domain.hints import partial_hint
from tutor.domain.planner import BOTTOM_OUT, FOCUS, PARTIAL, PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import ProblemBank
from tutor.domain.steps import final_answer_value
from tutor.domain.tutoring import plan_turn, solution_steps

BANK = ProblemBank.load(PROBLEMS_FILE)
SAMPLE = random.Random(7).sample(sorted(BANK.problems), 25)

ASKS_FOR_ANSWER = [
    "just tell me the answer", "What's the answer?", "Can you give me the final answer please",
    "solve it for me", "I just want the answer", "tell me the result", "answer please",
    "pls just give me the number", "skip to the answer", "what is the correct answer?",
    "Could you tell me what the answer is?", "Just the answer, thanks.",
]


def run(problem, messages, policy=RevealPolicy()):
    state, turns = PlannerState(), []
    for text in messages:
        turn = plan_turn(problem, state, text, policy, hint_requested=text is None)
        state = turn.state
        turns.append(turn)
    return turns


def said_final_answer(turn, problem) -> bool:
    """The turn states the final answer (asking "what is 200 + 300?" as a partial hint does not)."""
    context = GuardContext(final_answer_value(problem),
                           question_expression_ok=turn.guard.question_expression_ok)
    return check(turn.planned_text, context).leaked_final


@pytest.mark.parametrize("problem_id", SAMPLE)
def test_a_learner_who_answers_every_step_right_finishes_with_no_hints(problem_id):
    problem = BANK.get(problem_id)
    steps = solution_steps(problem)
    turns = run(problem, [f"I get {format_number(step.value)}{step.unit}" for step in steps])
    assert turns[-1].state.solved
    assert all(turn.move.hint_level == 0 for turn in turns)
    assert [t.move.intent for t in turns[:-1]] == ["praise_then_next_step"] * (len(steps) - 1)
    assert turns[-1].move.intent == "celebrate_solution"


@pytest.mark.parametrize("problem_id", SAMPLE)
def test_an_always_wrong_learner_climbs_the_ladder_in_order_and_never_gets_the_answer(problem_id):
    problem = BANK.get(problem_id)
    steps = solution_steps(problem)
    wrong = format_number(final_answer_value(problem) * 7 + 1)
    turns = run(problem, [f"is it {wrong}?"] * (6 * len(steps) + 4))
    first_step = [t for t in turns if t.move.step == 0]
    assert first_step[0].move.intent == "ask_to_explain"  # probe the misconception first
    # then one rung more concrete each time, the step's value after 3 more attempts unless
    # it is also the final answer (then the partial hint, said another way each time)
    top = PARTIAL if steps[0].value == steps[-1].value else BOTTOM_OUT
    assert [t.move.hint_level for t in first_step[1:4]] == [FOCUS, PARTIAL, top]
    # every earlier step is shown (bottom-out) after 3 attempts; one giving the answer never is
    answer_steps = [t for t in turns if t.move.step is not None
                    and steps[t.move.step].value == steps[-1].value]
    assert answer_steps and max(t.move.hint_level for t in answer_steps) == PARTIAL
    assert not any(said_final_answer(t, problem) for t in turns)
    assert not turns[-1].state.solved


def test_the_final_answer_is_revealed_only_after_the_policy_allows_it():
    problem = BANK.get("6000044")
    policy = RevealPolicy(bottom_out_after=1, final_answer_after=4)
    turns = run(problem, ["no idea"] * 20, policy)
    revealing = [i for i, t in enumerate(turns) if said_final_answer(t, problem)]
    assert revealing, "the policy allows the final answer after 4 attempts on the last step"
    first = revealing[0]
    assert turns[first].move.intent == "bottom_out" and turns[first].state.solved
    assert turns[first - 1].state.attempts == 3  # attempts 1-3 on the last step got hints only


@pytest.mark.parametrize("problem_id", SAMPLE[:10])
@pytest.mark.parametrize("request_text", ASKS_FOR_ANSWER)
def test_asking_for_the_answer_never_gets_it_early(problem_id, request_text):
    problem = BANK.get(problem_id)
    turns = run(problem, [request_text] * 8)
    assert all(t.grade.state.value == "asks_for_answer" for t in turns)
    assert all(t.move.move == "focus" and t.move.hint_level <= PARTIAL for t in turns)
    assert not any(said_final_answer(t, problem) for t in turns)


def test_planner_is_deterministic_and_its_state_round_trips_through_json():
    problem = BANK.get("6000044")
    messages = ["350", "I still think 350", None, "150", "just tell me", "300"]
    first, second = run(problem, messages), run(problem, messages)
    assert [t.move for t in first] == [t.move for t in second]
    for turn in first:
        assert PlannerState.from_json(turn.state.to_json()) == turn.state


def test_three_hint_presses_on_a_step_give_focus_then_partial_then_its_value():
    problem = BANK.get("6000044")  # steps: 3 * 50 = 150, 3 * 50 = 150, 150 + 150 = 300, 200 + 300 = 500
    turns = run(problem, [None] * 6)
    # a press counts toward the reveal policy (3 attempts by default); the next step opens with
    # its own question (the focus rung), so its first press gives the partial hint
    assert [t.move.hint_level for t in turns] == [FOCUS, PARTIAL, BOTTOM_OUT, PARTIAL, PARTIAL, BOTTOM_OUT]
    focus, partial, bottom_out = (t.planned_text for t in turns[:3])
    assert "___" in focus and "added to the cost of the desk" in focus
    assert "3 × 50" in partial and "Multiply" in partial and "150" not in partial
    assert "3 × 50 = $150" in bottom_out


def test_asking_for_the_answer_never_unlocks_a_reveal_and_never_asks_the_same_twice_in_a_row():
    problem = BANK.get("6000044")
    turns = run(problem, ["just tell me"] * 6)
    assert [t.move.hint_level for t in turns] == [FOCUS, PARTIAL, PARTIAL, PARTIAL, PARTIAL, PARTIAL]
    assert turns[-1].state.attempts == 0
    texts = [t.planned_text for t in turns]
    assert all(a != b for a, b in zip(texts, texts[1:]))


def test_a_step_giving_the_answer_is_shown_when_the_policy_allows_the_answer():
    # 5001009: the first step's value (10) is also the final answer
    problem = BANK.get("5001009")
    policy = RevealPolicy(bottom_out_after=1, final_answer_after=1)
    turns = run(problem, ["is it 71?"] + ["no idea"] * 4, policy)
    shown = [t for t in turns if t.move.intent == "bottom_out"]
    assert shown and "10" in shown[0].planned_text  # the reveal, not a substitute question


def test_a_partial_hint_naming_the_answer_as_an_operand_does_not_license_stating_it():
    from fractions import Fraction

    from tutor.domain.problems import Problem

    # the answer (20) is also the first operand of the last step's partial hint
    problem = Problem("ops", "A box holds 4 rows of 5 cans. Ten are sold and ten restocked. How many now?",
                      "20", ("4 * 5 = 20", "20 - 10 = 10", "10 + 10 = 20"))
    turns = run(problem, ["I don't know"] * 6)
    assert all(not t.guard.final_allowed for t in turns if t.move.hint_level < BOTTOM_OUT)
    assert Fraction(20) == final_answer_value(problem)


def test_the_last_steps_calculation_is_confirmed_and_left_to_the_learner_to_work_out():
    windows = BANK.get("5001062")
    turns = run(windows, ["12", "20", "20 x 4", "80"])
    assert turns[2].planned_text == "Yes, that's the right calculation. What is 20 × 4?"
    assert not said_final_answer(turns[2], windows) and turns[-1].state.solved


def test_a_number_the_learner_said_may_be_said_back_even_if_it_is_the_answer():
    kenny = BANK.get("6000069")  # 100 + 50 = 150 dollars, ..., 150 cards (the answer)
    turn = run(kenny, ["150 dollars"])[0]
    assert turn.planned_text.startswith("That's right: $150.") and "He sold ___ cards" in turn.planned_text


def test_a_partial_hint_writes_brackets_as_a_child_reads_them():
    problem = BANK.get("6000069")  # a step 1 - (1 / 3) = 2/3
    step = next(s for s in solution_steps(problem) if "(" in s.expression)
    assert "1 − (1 ÷ 3)" in partial_hint(step) and "( " not in partial_hint(step)
