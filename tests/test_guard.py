from fractions import Fraction

import pytest

from tutor.domain.guard import GuardContext, check

CARMEN = GuardContext(final_answer=Fraction(500), allowed=frozenset({Fraction(200), Fraction(50), Fraction(3)}))


@pytest.mark.parametrize(
    "draft",
    [
        "Great job, the answer is 500.",  # digits
        "So the desk costs $500.00 in the end.",  # currency and decimals
        "It comes to five hundred dollars.",  # words
        "The total is 200 + 300 dollars.",  # an expression
        "Multiply 250 by 2 and you have it.",  # an expression in words
        "It costs 250. Double that and you're done.",  # spread over two sentences
        "Five. Hundred. That's what she pays.",  # words split over sentences
        "The answer is 5 0 0.",  # digit by digit
        "Half of 1000 is what Carmen pays.",
    ],
)
def test_adversarial_drafts_that_give_the_answer_are_caught(draft):
    result = check(draft, CARMEN)
    assert not result.ok
    assert result.leaked_final


def test_numbers_nobody_has_said_yet_are_caught():
    result = check("You're close: each person adds 150 to the price, right?", CARMEN)
    assert result.reasons == ("mentions 150, which is neither given, the learner's, nor allowed yet",)
    assert not result.leaked_final


def test_givens_learner_values_and_small_numbers_pass():
    context = GuardContext(Fraction(500), allowed=CARMEN.allowed | {Fraction(150)})
    assert check("Yes, 150! Now, the 3 other people each bid $50 too. What do they add?", context).ok
    assert check("Two more steps to go. What's the first one?", context).ok


def test_the_answer_passes_once_the_learner_has_stated_it():
    assert check("Yes, 500 is right!", GuardContext(Fraction(500), final_allowed=True)).ok


def test_a_partial_hint_may_ask_for_the_last_calculation_but_not_state_it():
    context = GuardContext(Fraction(500), allowed=CARMEN.allowed | {Fraction(300)},
                           question_expression_ok=True)
    assert check("What is 200 + 300?", context).ok
    assert not check("It's 200 + 300. What is that?", GuardContext(
        Fraction(500), allowed=CARMEN.allowed | {Fraction(300)})).ok


def test_model_drafts_must_ask_something_and_stay_short():
    context = GuardContext(Fraction(500), allowed=CARMEN.allowed, requires_question=True, max_chars=80)
    assert check("Let's think about it.", context).reasons == ("does not ask the learner anything",)
    assert "is longer than 80 characters" in check("What? " + "so " * 40, context).reasons
