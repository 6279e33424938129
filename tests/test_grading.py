from fractions import Fraction

import pytest

from tutor.domain.arithmetic import numbers_in
from tutor.domain.grading import LearnerState, grade
from tutor.domain.problems import Problem
from tutor.domain.steps import final_answer_value, worked_solution

SPOONS = Problem("spoons", "Ana has 5 packs of 3 spoons. She gives away 3 spoons. How many are left?",
                 "12", ("5 packs * 3 spoons = 15 spoons", "15 - 3 = 12"))
HALF = Problem("half", "A pizza has 8 slices and Tom eats 4. What share did he eat?", "0.5",
               ("4 / 8 = 0.5",))


def judge(text, problem=SPOONS, current=0):
    steps = worked_solution(problem).steps
    return grade(text, steps, current, final_answer_value(problem),
                 set(numbers_in(problem.question)), problem.question)


@pytest.mark.parametrize("text", ["15", "15 spoons", "$15.00", "3*5", "15.0", "x = 15",
                                  "I think it's fifteen", "5 x 3 = 15"])
def test_the_step_value_is_recognised_in_free_text(text):
    result = judge(text)
    assert (result.state, result.value, result.step_index) == (LearnerState.CORRECT, 15, 0)


@pytest.mark.parametrize("text", ["1/2", "0.5", "it is one half? no: 1/2", "50%"])
def test_equivalent_forms_of_a_fraction_are_equal(text):
    result = judge(text, HALF)
    assert result.state is LearnerState.CORRECT and result.final


def test_the_final_answer_finishes_the_problem_from_any_step():
    result = judge("12 spoons are left")
    assert result.final and result.value == 12


def test_a_right_calculation_with_a_wrong_result_is_partially_correct():
    assert judge("5 * 3 = 18").state is LearnerState.PARTIAL


def test_a_decimal_place_slip_is_partially_correct():
    assert judge("150").state is LearnerState.PARTIAL


def test_a_wrong_value_is_incorrect():
    result = judge("I think 8")
    assert (result.state, result.value) == (LearnerState.INCORRECT, 8)


def test_restating_the_givens_is_not_an_attempt():
    assert judge("She has 5 packs of 3 spoons").state is LearnerState.UNCLEAR


@pytest.mark.parametrize("text, state", [
    ("just tell me the answer", LearnerState.ASKS_FOR_ANSWER),
    ("I don't know", LearnerState.STUCK),
    ("what does 'pack' mean?", LearnerState.QUESTION),
    ("my cat likes football and sleeping", LearnerState.OFF_TOPIC),
])
def test_learner_states_without_numbers(text, state):
    assert judge(text).state is state


def test_own_problem_without_solution_checks_the_learners_arithmetic():
    own = Problem("own", "Sam has 7 apples and buys 6 more.", source="learner")
    assert grade("7 + 6 = 13", (), 0, None, {Fraction(7), Fraction(6)}).state is LearnerState.CORRECT
    assert grade("7 + 6 = 12", (), 0, None, {Fraction(7), Fraction(6)}).state is LearnerState.PARTIAL
    assert own.solution == ()


def test_the_last_steps_calculation_not_worked_out_is_right_but_not_the_answer(bank):
    from tutor.domain.tutoring import givens, solution_steps

    windows = bank.get("5001062")  # 6 x 2 = 12, 12 + 8 = 20, 20 x 4 = 80
    steps = solution_steps(windows)
    graded = grade("20 x 4", steps, 2, final_answer_value(windows), set(givens(windows)), windows.question)
    assert (graded.state, graded.value, graded.final, graded.expression) == (LearnerState.CORRECT, None, False, "20 * 4")


def test_a_steps_value_put_forward_as_the_answer_is_right_for_the_step_only(bank):
    from tutor.domain.tutoring import givens, solution_steps

    juggling = bank.get("5000021")  # 2 x 5 = 10, 10 + 3 = 13
    steps = solution_steps(juggling)
    graded = grade("the answer is 10", steps, 0, final_answer_value(juggling), set(givens(juggling)), juggling.question)
    assert (graded.state, graded.value, graded.as_answer) == (LearnerState.CORRECT, 10, True)


def test_a_longer_calculation_holding_the_steps_is_not_that_step(bank):
    from tutor.domain.tutoring import givens, solution_steps

    jace = bank.get("5000495")  # 4 + 9 = 13, 60 * 13 = 780
    graded = grade("i think its 60+4+9", solution_steps(jace), 0, final_answer_value(jace), set(givens(jace)),
                   jace.question)
    assert (graded.state, graded.value) == (LearnerState.INCORRECT, 73)  # not partially right: 4 + 9 inside it
