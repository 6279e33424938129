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


# The final answer's value is the learner's answer only when they say it of what the question
# asks and conclude with it: on MathDial's validation dialogues the planner said "Yes, $20 is the
# answer! You solved the whole problem" to learners whose answer was $80 or "20 key chains".
SOAP = Problem("soap", "Jake can wash his car with 1 bottle of car wash soap 4 times.  If each bottle costs $4.00, "
               "and he washes his car once a week for 20 weeks, how much does he spend on car soap?", "20",
               ("1 bottle of soap will last for 4 washes and he needs enough bottles for 20 weeks so 20/4 = 5 bottles",
                "Each bottle cost $4.00 and he needs 5 bottles so he will spend $4*5 = $20.00 on car soap"))
KEY_CHAINS = Problem("keys", "Matt can buy key chains in packs of 10 for $20 or in packs of 4 for $12. How much money "
                     "can he save if he chooses to buy 20 key chains at a lower price?", "20",
                     ("The cost of each key chain in packs of 10 for $20 is $20/10=$2.",
                      "The cost of each key chain in packs of 4 for $12 is $12/4=$3.",
                      "There is a price difference of $3-$2=$1 per key chain between the two choices.",
                      "By buying 20 key chains at a lower price, Matt can save 20x$1=$20."))
CARDS = Problem("cards", "Kenny is selling his Pokemon cards to buy a ticket to an amusement park, which costs $100. "
                "He has a collection of cards and plans to sell them for $1.5 each. He keeps 1/3 of them and gets to "
                "go to the amusement park with $50 in spending cash. How many cards did he start with?", "150",
                ("He made $150 selling the cards because 100 + 50 = 150", "He sold 100 cards because 150 / 1.5 = 100",
                 "The cards he sold were 2/3 of his collection because 1 - (1/3) = 2/3",
                 "He started with 150 cards because 100 / (2/3) = 150"))
LULU = Problem("lulu", "Lulu has $65 in her piggy bank. She spent $5 on ice cream. She then spent half of the "
               "remainder of the money on a t-shirt. Afterwards, she went to the bank and deposited a fifth of her "
               "remaining money. How much cash was Lulu left with?", "24",
               ("Lulu had 65-5 = 60 dollars left after eating ice cream.", "Lulu had 60/2 = 30 dollars left.",
                "Lulu deposited 30/5 = 6 dollars", "Lulu was left with 30-6 = 24 in cash."))
FEED = Problem("feed", "Every day, Wendi feeds each of her chickens three cups of feed. In the morning, she gives her "
               "flock of chickens 15 cups of feed.  In the afternoon, she gives her chickens another 25 cups of feed.  "
               "How many cups of feed does she need to give her chickens in the final meal of the day if the size "
               "of Wendi's flock is 20 chickens?", "20",
               ("If each chicken eats 3 cups of feed per day, then for 20 chickens they would need 3*20=60 cups of "
                "feed per day.", "If she feeds the flock 15 cups of feed in the morning, and 25 cups in the afternoon, "
                "then the final meal would require 60-15-25=20 cups of chicken feed."))


@pytest.mark.parametrize("problem, text", [
    (KEY_CHAINS, "Matt would need to buy 5 packs of 4 key chains to get 20 key chains."),  # the answer is $20
    (CARDS, "So, 3x/2 = $150 and solving for x, we get x = 100. This means that Kenny started with 100 cards."),
    (FEED, "The answer is actually 60 cups of feed for the final meal, since each chicken needs 3 cups of feed "
           "and there are 20 chickens."),  # 20 chickens, not 20 cups
])
def test_the_answers_value_said_of_another_quantity_does_not_finish_the_problem(problem, text):
    result = judge(text, problem, current=2)
    assert not result.final and not (result.state is LearnerState.CORRECT
                                     and result.step_index == len(worked_solution(problem).steps) - 1)


def test_a_message_that_goes_on_from_the_answers_value_to_another_answer_is_wrong():
    result = judge("Over 20 weeks, Jake washes his car 20 x 1 = 20 times. So he will spend 20 x $4.00 = $80.00 "
                   "on car soap over 20 weeks.", SOAP)
    assert (result.state, result.value, result.final) == (LearnerState.INCORRECT, 80, False)


@pytest.mark.parametrize("problem, text, current", [
    (SOAP, "Each wash costs $4.00/4 = $1.00. Therefore, 20 washes would cost 20 x $1.00 = $20.00.", 0),
    (LULU, "I will have $24 left over. $30 - $6 = $24.", 2),  # "24 in cash" is money
    (FEED, "3 x 20 = 60 cups of feed. She has already given 15 + 25 = 40 cups, so she needs to give "
           "60 - 40 = 20 cups of feed in the final meal.", 1),  # 40 cups on the way is no other answer
    (CARDS, "He had 100/2/3 = 150 cards.", 2),
])
def test_the_answer_said_of_what_the_question_asks_still_finishes_the_problem(problem, text, current):
    result = judge(text, problem, current)
    assert result.state is LearnerState.CORRECT and result.value == final_answer_value(problem)


def test_a_decimal_slip_names_the_slipped_value():
    result = judge("I got 3 and then 150")
    assert (result.state, result.value) == (LearnerState.PARTIAL, 150)
