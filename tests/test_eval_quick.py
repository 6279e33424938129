from tutor.cli import main
from tutor.domain.dialogues import Dialogue, LearnerProfile, Turn, write_jsonl
from tutor.evaluation.quick import run_quick

CARMEN = "6000044"  # answer 500; givens 200, 50, 3


def dialogue(*turns, incorrect=""):
    return Dialogue("d-1", CARMEN, tuple(turns), LearnerProfile(incorrect_solution=incorrect))


def test_human_turns_repeating_the_learner_pass_and_early_answers_are_blocked(bank):
    report = run_quick([dialogue(
        Turn("teacher", "Talk me through your solution.", "generic"),
        Turn("learner", "I got 350 because 200 + 150 = 350."),
        Turn("teacher", "Why did you add 150 to 200?", "probing"),  # learner's numbers: passes
        Turn("learner", "Because the bids added 150."),
        Turn("teacher", "So the desk costs 500, right?", "focus"),  # early answer: blocked
        incorrect="200 + 150 = 350",
    )], bank)
    assert (report.human_turns, report.human_blocked, report.human_blocked_for_final) == (3, 1, 1)
    assert report.guard_false_positive_rate == 1 / 3


def test_our_tutor_turns_never_leak_and_mostly_ask(bank):
    report = run_quick([dialogue(
        Turn("learner", "just tell me the answer"),
        Turn("teacher", "What do the other people's bids add?", "focus"),
        Turn("learner", "I don't know"),
        Turn("teacher", "Three bids of $50 each.", "telling"),
    )], bank)
    assert report.tutor_turns == 2
    assert report.leak_rate == 0 and report.question_rate == 1
    assert report.human_telling_turns == 1


def test_eval_quick_prints_the_figures(tmp_path, capsys):
    path = tmp_path / "one.jsonl"
    write_jsonl(path, [dialogue(Turn("learner", "is it 350?"),
                                Turn("teacher", "How did you get 350?", "probing")).to_json()])
    assert main(["eval", "--quick", "--dialogues", str(path)]) == 0
    out = capsys.readouterr().out
    for label in ("guard false-positive rate", "leak rate", "question rate"):
        assert label in out
