"""Truth: a tutor turn states nothing false about the problem or about what the learner did."""

import pytest

from tests.conftest import CARMEN_ID
from tutor.config import VOCABULARY_FILE
from tutor.domain.faithfulness import load_vocabulary
from tutor.domain.tutoring import solution_steps
from tutor.domain.truth import (
    ASKS_DONE_STEP,
    CALLS_RIGHT_WRONG,
    COUNTS_ABSENT,
    FALSE_ATTRIBUTION,
    FALSE_TIE,
    GIVES_STEP_AWAY,
    UNMADE_CALCULATION,
    WORK_REMAINS,
    facts_of,
    false_statements,
    suggested_calculations,
)

VOCABULARY = load_vocabulary(VOCABULARY_FILE)


@pytest.fixture
def carmen(bank):
    return bank.get(CARMEN_ID)  # 3 other people bid $50 each; Carmen bids after each; answer 500


def facts(problem, learner=("I think it is 350",), **kwargs):
    return facts_of(problem.question, solution_steps(problem), learner, common=VOCABULARY.common, **kwargs)


def kinds(sentence, known):
    return {reason.split(":")[0] for reason in false_statements(sentence, known)}


def test_a_number_claimed_for_a_thing_must_be_the_problems(carmen):
    known = facts(carmen)
    assert FALSE_TIE in kinds("Exactly, the number of people is 50.", known)  # v5: there are 3 other people
    assert not kinds("The number of people is 3.", known)
    assert not kinds("Each of the 3 other people bids $50.", known)


def test_what_the_problem_does_not_have_cannot_be_counted(bank):
    jace = facts(bank.get("5000495"), ("780 miles",))  # hours and miles, no days
    assert COUNTS_ABSENT in kinds("Think about the total distance over two days.", jace)
    assert not kinds("He drives for 13 hours in all.", jace)
    assert not kinds("Think of it 2 times.", jace)  # tutoring language, not a thing counted


def test_a_suggested_calculation_must_be_one_a_step_makes(carmen):
    known = facts(carmen)
    assert UNMADE_CALCULATION in kinds("Now divide 150 by 3.", known)
    assert UNMADE_CALCULATION in kinds("What is 200 + 50?", known)  # the misconception's route
    assert not kinds("What is 3 × 50?", known)
    assert not kinds("Add 150 and 150.", known)
    # stated with its result it is arithmetic (checked as such), and a fraction is a number
    assert suggested_calculations("3 x 50 = 150, and 9/10 of it") == []
    # the learner's own calculation may be asked about
    assert not kinds("Why did you do 200 + 150?", facts(carmen, ("200 + 150 = 350",)))


def test_a_subtraction_or_division_is_suggested_the_way_round_a_step_makes_it(bank):
    brandon = bank.get("5000361")  # ... 1800 - 1600 = 200
    known = facts(brandon, ("1600",))
    assert UNMADE_CALCULATION in kinds("1600 minus 1800 =?", known)  # v6 after "just tell me the answer please"
    assert not kinds("What is 1800 − 1600?", known)
    assert not kinds("Why did you do 1600 - 1800?", facts(brandon, ("1600 - 1800 = -200",)))  # the learner's own


def test_the_learner_is_not_said_to_have_said_or_done_what_they_did_not(carmen):
    known = facts(carmen, ("I think it is 350",))
    assert FALSE_ATTRIBUTION in kinds("You said 150, so what comes next?", known)
    assert not kinds("You said 350. How did you get it?", known)
    assert FALSE_ATTRIBUTION in kinds("Can you explain your solution again?", known)  # nothing was explained
    explained = facts(carmen, ("I added the opening bid and the three other bids of $50 each", "350"))
    assert not kinds("Can you explain your solution again?", explained)


def test_after_a_solution_nothing_says_work_remains(carmen):
    solved = facts(carmen, ("500",), solved=True)
    assert WORK_REMAINS in kinds("Now we just need to think about the total.", solved)
    assert WORK_REMAINS in kinds("How much did Carmen bid?", solved)
    assert not kinds("Well done! Want to try another problem?", solved)
    assert not kinds("Do you understand it now?", solved)


def test_a_question_does_not_ask_for_a_step_already_done(bank):
    hooper = bank.get("5000623")  # 80 + 80 = 160, 2 * 160 = 320, 320 + 160 = 480
    known = facts(hooper, ("160",), done=(0,), current=1)
    assert ASKS_DONE_STEP in kinds("What is 80 + 80?", known)  # the learner said 160 for it
    assert not kinds("Why did you add 80 and 80?", known)  # about it, not asking for it
    assert not kinds("What is 2 × 160?", known)
    skipped = facts(hooper, ("320",), done=(0, 1), current=2)  # 160 was never said: it may be asked
    assert not kinds("What is 80 + 80?", skipped)


def test_a_number_called_wrong_must_be_a_wrong_value_of_the_learners(bank):
    hooper = bank.get("5000623")  # 80 + 80 = 160, 2 * 160 = 320, 320 + 160 = 480
    known = facts(hooper, ("i think its 240", "the other 2 have 80 each so 160", "why is that wrong"), done=(0,),
                  current=1)
    assert not kinds("240 isn't right.", known)  # the learner's wrong value
    assert FALSE_ATTRIBUTION in kinds("25 is wrong, so what do we do next?", known)  # never said
    assert CALLS_RIGHT_WRONG in kinds("160 isn't there, so multiply 2 by 160.", known)  # a step done right
    assert CALLS_RIGHT_WRONG in kinds("2 × 160 is not possible, so what is 2 × 160?", known)
    # the value just said may be wrong for this step though right for an earlier one ("160" for 2 × 160)
    just_said = facts(hooper, ("the other 2 have 80 each so 160", "160"), done=(0,), current=1)
    assert not kinds("160 isn't right for this step.", just_said)


def test_a_steps_value_is_not_given_away_as_what_something_should_be(bank):
    hooper = bank.get("5000623")
    known = facts(hooper, ("idk",), current=0)
    assert GIVES_STEP_AWAY in kinds("It should be 160, so what comes next?", known)  # v6's first draft
    assert not kinds("It should be more than 80, shouldn't it?", known)
    said = facts(hooper, ("is it 160",), current=0)
    assert not kinds("Yes, it should be 160.", said)  # the learner's own value
