"""The spine of a turn: the verdict, the hint rung's content and one question, found in the words."""

import pytest

from tests.conftest import CARMEN_ID
from tutor.domain.planner import FOCUS, PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.spine import (
    NO_CONFIRMATION,
    NO_DECLINE,
    NO_MISTAKE_NAMED,
    NO_QUESTION_TOWARD_STEP,
    no_hint,
    spine_reasons,
)
from tutor.domain.tutoring import plan_turn


@pytest.fixture
def carmen(bank):
    return bank.get(CARMEN_ID)  # steps: 3 * 50 = 150, 3 * 50 = 150, 150 + 150 = 300, 200 + 300 = 500


def spine(problem, learner_text, state=PlannerState()):
    return plan_turn(problem, state, learner_text, RevealPolicy(), hint_requested=learner_text is None).spine


def test_a_right_value_must_be_confirmed_and_the_next_step_asked_about(carmen):
    right = spine(carmen, "150")
    assert right.verdict == "confirm" and right.question_step.expression == "3 * 50"
    assert spine_reasons("Yes, 150 is right. What do Carmen's own 3 bids add?", right) == ()
    assert NO_CONFIRMATION in spine_reasons("What do Carmen's own 3 bids add?", right)
    assert NO_QUESTION_TOWARD_STEP in spine_reasons("Yes, 150 is right.", right)
    assert spine_reasons(right.text, right) == ()  # the planner's own words carry it


def test_a_wrong_value_must_be_named_plainly_or_asked_about(carmen):
    wrong = spine(carmen, "I think it is 350")
    assert wrong.verdict == "name_wrong" and wrong.value == 350
    assert spine_reasons("How did you get 350?", wrong) == ()
    assert spine_reasons("350 isn't right. What do the 3 other bids add?", wrong) == ()
    assert NO_MISTAKE_NAMED in spine_reasons("What do the 3 other bids add?", wrong)
    assert NO_MISTAKE_NAMED in spine_reasons("How did you get that?", wrong)  # which value?


def test_each_hint_rung_has_content_the_words_must_carry(carmen):
    focus = spine(carmen, None)
    partial = spine(carmen, None, PlannerState(attempts=1, hint_level=FOCUS, asked=FOCUS))
    shown = spine(carmen, None, PlannerState(attempts=2, hint_level=3, asked=3))
    assert (focus.rung, partial.rung, shown.rung) == ("focus", "partial", "bottom_out")
    # focus: the step's blanked sentence or its words; partial: operands and operation; bottom-out: the value
    assert no_hint("focus") in spine_reasons("What do you think comes next?", focus)
    assert no_hint("focus") not in spine_reasons("How much do the other people's bids add to the desk?", focus)
    assert no_hint("partial") in spine_reasons("What do the 3 bids of $50 make?", partial)  # no operation
    assert spine_reasons("Multiply 3 by 50: what is 3 × 50?", partial) == ()
    assert no_hint("bottom-out") in spine_reasons("Multiply 3 by 50.", shown)
    assert no_hint("bottom-out") not in spine_reasons("3 × 50 = 150. What do Carmen's 3 bids add?", shown)


def test_a_celebration_confirms_by_celebrating_and_asks_nothing(carmen):
    state = PlannerState(step=3, completed=(0, 1, 2), known_values=("150", "300"))
    celebration = spine(carmen, "500", state)
    assert celebration.celebration and celebration.question_step is None
    assert spine_reasons("Well done, $500 is the answer!", celebration) == ()
    assert NO_CONFIRMATION in spine_reasons("Good job!", celebration)  # which value? v6's first drafts
    assert NO_CONFIRMATION in spine_reasons("The desk costs 500.", celebration)


def test_the_question_toward_the_step_asks_for_something(bank):
    """v6 after "whats next": the rung's calculation, then a question that asks nothing of it."""
    problem = bank.get("6000069")
    state = PlannerState(step=2, completed=(0, 1), known_values=("150", "100"))
    partial = spine(problem, None, state)
    assert NO_QUESTION_TOWARD_STEP in spine_reasons("1 − (1 ÷ 3) isn't that some kind of shorthand?", partial)
    assert NO_QUESTION_TOWARD_STEP not in spine_reasons("What do you get when you work out 1 − (1 ÷ 3)?", partial)


def test_after_just_tell_me_the_turn_says_it_gives_a_hint_instead(bank):
    """v6's "220 × 12 is equal to how many dollars?" carried the hint but not the refusal
    (raters: "no acknowledgement, stiff")."""
    problem = bank.get("6000055")
    state = PlannerState(step=2, completed=(0, 1), known_values=("100", "220"))
    declined = spine(problem, "just tell me the answer", state)
    assert NO_DECLINE in spine_reasons("220 × 12 is equal to how many dollars?", declined)
    assert spine_reasons("I won't give it away, but here's a hint: what is 220 × 12?", declined) == ()
    assert spine_reasons(declined.text, declined) == ()
