"""No repeated question: a tutor question whose meaning one of the last two tutor turns asked."""

from tutor.domain.repeats import WORDS, RepeatRule


def test_the_same_question_in_fewer_words_is_a_repeat():
    recent = ["How much money did Carmen spend on the bids?"]
    assert WORDS.repeated("Good. How much did she spend on the bids?", recent)
    assert not WORDS.repeated("How much did each of the 3 other bids add?", recent)  # a number it did not name
    assert not WORDS.repeated("Think about the bids.", recent)  # asks nothing


def test_a_repeat_is_judged_against_the_last_two_turns_by_meaning():
    def meaning(new, earlier):  # a stand-in for the sentence model: close when they share the last word
        return [[1.0 if a.split()[-1] == b.split()[-1] else 0.2 for b in earlier] for a in new]

    rule = RepeatRule(meaning, threshold=0.9)
    recent = ["What is Hooper Bay's lobster in pounds?", "Try again."]
    assert rule.repeated("How many pounds does it have in pounds?", recent)
    assert not rule.repeated("How many harbors are there?", recent)


def test_the_apps_threshold_is_the_calibrated_one():
    from tutor.model.similarity import REPEAT_THRESHOLD

    assert REPEAT_THRESHOLD == 0.9  # read on human teachers' question pairs (README)
