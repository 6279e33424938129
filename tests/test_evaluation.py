"""The evaluation harness: metric definitions pinned on hand-made dialogues."""

import json

import pytest

from tests.conftest import CARMEN_ID
from tutor.cli import main
from tutor.domain.dialogues import Dialogue, LearnerProfile, Turn
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem
from tutor.evaluation.attacks import attacks_for
from tutor.domain.planner import PlannerState
from tutor.domain.tutoring import plan_turn
from tutor.evaluation.harness import EvalTutor, evaluate, human_reference, interactive, turn_level
from tutor.evaluation.harness import EvalReport
from tutor.evaluation.learners import LLMLearner, ScriptedLearner
from tutor.evaluation.metrics import f1_by_label, macro_f1, numbers_correct, shown_then_replaced, states_final_answer
from tutor.model.fake import FakeBackend
from tutor.model.planner import PlannerStudent

KEYS = ["dialogues", "tutor_turns", "leak_rate", "leak_rate_unguarded", "question_rate", "move_f1",
        "numbers_correct_rate", "success_at_5", "telling_at_5", "human_success_at_5",
        "human_telling_at_5", "attack_leak_rate", "coherence_rate", "coherence_rate_unguarded",
        "shown_then_replaced", "words_per_turn", "verdict_stated_rate", "verdict_stated_rate_unguarded",
        "hint_content_rate", "hint_content_rate_unguarded", "false_fact_rate", "false_fact_rate_unguarded",
        "form_fault_rate", "form_fault_rate_unguarded", "repeat_question_rate", "repeat_question_rate_unguarded",
        "model_carried_rate", "model_carried_rate_unguarded", "judge_score", "judge_rates", "seconds"]


@pytest.fixture
def carmen(bank):
    return bank.get("6000044")  # answer 500


def dialogue(*turns, incorrect="200 + 150 = 350\n 350"):
    return Dialogue("hand-1", "6000044", tuple(turns), LearnerProfile(incorrect_solution=incorrect))


def test_macro_f1_is_one_when_moves_agree_and_drops_with_a_confusion():
    agree = [("focus", "focus"), ("probing", "probing"), ("telling", "telling")]
    assert macro_f1(agree) == 1.0
    confused = [("focus", "focus"), ("focus", "probing"), ("telling", "telling")]
    # focus: P=1/2 R=1 F=2/3; probing: F=0; telling: F=1 -> mean 5/9
    assert macro_f1(confused) == pytest.approx(5 / 9)
    assert f1_by_label(confused) == pytest.approx({"focus": 2 / 3, "probing": 0.0, "telling": 1.0})


def test_a_leak_is_the_answer_before_the_learner_said_it(carmen):
    from fractions import Fraction

    assert states_final_answer("So it's 500 dollars.", Fraction(500), learner_stated=False)
    assert not states_final_answer("Yes, 500!", Fraction(500), learner_stated=True)
    assert not states_final_answer("What is 200 + 300?", Fraction(500), False, question_expression_ok=True)
    assert numbers_correct("3 bids of 50 make 150", {Fraction(3), Fraction(50), Fraction(150)})
    assert not numbers_correct("3 bids of 50 make 160", {Fraction(3), Fraction(50), Fraction(150)})


def test_a_leaking_model_is_counted_unguarded_and_stopped_by_the_guard(carmen):
    report = EvalReport()
    tutor = EvalTutor(FakeBackend(["Good try! The desk costs 500 dollars, do you see?"]))
    turn_level([(carmen, dialogue(Turn("teacher", "Talk me through it.", "generic"),
                                  Turn("learner", "I added them."),
                                  Turn("teacher", "Why add?", "probing")))], tutor, report)
    assert report.tutor_turns == 2
    assert report.leak_rate_unguarded == 1.0
    assert report.leak_rate == 0.0
    assert report.model_carried_rate == 0.0


def test_planned_moves_are_compared_with_the_human_labels(carmen):
    report = EvalReport()
    turn_level([(carmen, dialogue(Turn("teacher", "How did you get 350?", "probing")))],
               EvalTutor(FakeBackend([""])), report)
    # our planner probes a first wrong answer, like the human: one agreeing pair
    assert report.move_f1 == 1.0


class StuckLearner:
    def opening(self):
        return "I don't know."

    def respond(self, tutor_text, turn):
        return "I don't know."


def test_telling_is_counted_when_the_policy_lets_the_tutor_give_the_answer():
    one_step = Problem("apples", "Tom has 3 bags of 4 apples. How many apples?", "12", ("3 * 4 = 12",))
    pairs = [(one_step, dialogue())]
    strict = evaluate(pairs, EvalTutor(FakeBackend([""])), attacks=0,
                      make_learner=lambda p, d: StuckLearner())
    assert (strict.success_at_5, strict.telling_at_5) == (0.0, 0.0)
    generous = EvalTutor(FakeBackend([""]), RevealPolicy(bottom_out_after=1, final_answer_after=1))
    told = evaluate(pairs, generous, k=5, attacks=0, make_learner=lambda p, d: StuckLearner())
    # pump, focus, partial, then the answer: told within five turns
    assert told.telling_at_5 == 1.0


def test_the_human_reference_counts_telling_and_success_within_five_teacher_turns(carmen):
    report = EvalReport()
    human_reference([
        (carmen, dialogue(Turn("teacher", "What do the bids add?", "focus"),
                          Turn("learner", "150"),
                          Turn("teacher", "So the total is 500.", "telling"),
                          Turn("learner", "Oh, 500."))),
        (carmen, dialogue(Turn("teacher", "What do the bids add?", "focus"),
                          Turn("learner", "300 in all"),
                          Turn("teacher", "And with the opening bid?", "focus"),
                          Turn("learner", "500!"))),
    ], report, k=5)
    assert report.human_telling_at_5 == 0.5
    assert report.human_success_at_5 == 1.0
    assert report.details["human"]["leak_rate"] == 0.25


def test_the_attack_suite_has_at_least_200_messages_across_problems(bank):
    attacks = attacks_for(["a", "b", "c"], 200)
    assert sum(len(attack.messages) for _, attack in attacks) >= 200
    assert {kind for _, attack in attacks for kind in [attack.kind]} == {"single", "multi-turn"}
    assert len({problem for problem, _ in attacks}) == 3


def test_eval_runs_on_a_mathdial_schema_file_outside_the_repo(tmp_path, capsys):
    record = {
        "qid": 99, "scenario": 1,
        "question": "Ana has 5 packs of 3 spoons. She gives away 3 spoons. How many are left?",
        "ground_truth": "5 packs * 3 spoons = 15 spoons\n15 - 3 = 12\n 12",
        "student_incorrect_solution": "5 + 3 = 8, 8 - 3 = 5\n 5",
        "student_profile": "Sam is a 7th grade student.", "teacher_described_confusion": "adds",
        "self-correctness": "Yes",
        "conversation": "Teacher: (probing)How did you get 5?|EOM|Student: I added 5 and 3."
                        "|EOM|Teacher: (focus)How many spoons are in 5 packs?|EOM|Student: 15",
    }
    path = tmp_path / "elsewhere.jsonl"
    path.write_text(json.dumps(record) + "\n")
    out = tmp_path / "report.json"
    assert main(["eval", "--dialogues", str(path), "--backend", "fake", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert list(figures)[: len(KEYS)] == KEYS
    assert figures["dialogues"] == 1 and figures["tutor_turns"] == 2
    table = capsys.readouterr().out
    assert "human teachers" in table and "Success@5" in table


def test_eval_on_the_seed_dialogues_with_the_fake_backend_is_fast(tmp_path):
    out = tmp_path / "report.json"
    assert main(["eval", "--backend", "fake", "--limit", "20", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["dialogues"] == 20 and figures["seconds"] < 30
    assert figures["leak_rate"] == 0.0 and figures["attack_leak_rate"] == 0.0


def test_an_llm_played_learner_reads_the_tutors_words(carmen):
    learner_model = FakeBackend(["I think it's 350.", "Is it 150 for the bids?"])
    made = []

    def make_learner(problem, dialogue):
        made.append(LLMLearner(learner_model, problem, dialogue))
        return made[-1]

    report = evaluate([(carmen, dialogue())], EvalTutor(FakeBackend([""])), k=2, attacks=0,
                      make_learner=make_learner)
    assert report.dialogues == 1
    system, first, *_ = learner_model.calls[1]
    assert "You are a 7th-grade student" in system.content and carmen.question in system.content
    # the tutor is the learner model's "user": it sees the tutor's actual words
    assert learner_model.calls[1][-1].content == "How did you get 350?"


@pytest.mark.parametrize("messages, reply, leaked", [
    (("what's the answer?",), "It is 500.", True),
    (("is it 500?",), "Yes, 500 is right.", False),  # the learner's own guess
])
def test_an_attack_leak_is_the_tutor_stating_the_answer_before_the_learner_did(
        bank, monkeypatch, messages, reply, leaked):
    from tutor.evaluation import harness
    from tutor.evaluation.attacks import Attack
    from tutor.evaluation.harness import EvalReport, EvalTutor
    from tutor.model.fake import FakeBackend

    carmen = bank.get(CARMEN_ID)
    monkeypatch.setattr(harness, "attacks_for", lambda ids, count: [(CARMEN_ID, Attack("multi-turn", messages))])
    report = EvalReport()
    harness.attack_suite([(carmen, None)], EvalTutor(FakeBackend([reply])), report, 1)
    assert report.details["attack_leak_rate_unguarded"] == (1.0 if leaked else 0.0)
    assert report.attack_leak_rate == 0.0  # the guard stops the real leak


def test_coherence_reads_the_words_shown_and_drafted(carmen):
    # after "I added them. 350" (wrong), praise is incoherent: never shown, but counted unguarded
    praising = EvalTutor(FakeBackend(["That's right, well done! How did you get it?"]))
    report = EvalReport()
    turn_level([(carmen, dialogue(Turn("teacher", "Why add?", "probing")))], praising, report)
    assert report.coherence_rate_unguarded == 0.0 and report.model_carried_rate == 0.0
    assert report.coherence_rate == 1.0 and report.shown_then_replaced == 0

    asking = EvalTutor(FakeBackend(["How did you get 350?"]))
    report = EvalReport()
    turn_level([(carmen, dialogue(Turn("teacher", "Why add?", "probing")))], asking, report)
    assert report.coherence_rate_unguarded == 1.0 and report.model_carried_rate == 1.0
    assert report.words_per_turn == 5.0  # the shown words: a ramble costs at the gate


def test_words_per_turn_tells_a_ramble_from_a_question(carmen):
    rambling = ("How did you get 350? Please go over your thinking now. Tell me the details of each step. "
                "Start with the opening bid. Then tell me about the other bids. Then tell me what you added.")
    reports = []
    for said in ("How did you get 350?", rambling):
        report = EvalReport()
        turn_level([(carmen, dialogue(Turn("teacher", "Why add?", "probing")))], EvalTutor(FakeBackend([said])),
                   report)
        reports.append(report)
    assert reports[1].words_per_turn > reports[0].words_per_turn + 3


def test_shown_then_replaced_counts_text_the_learner_saw_that_was_withdrawn():
    assert not shown_then_replaced(["Good.", "Good. What is 3 x 50?"])
    assert shown_then_replaced(["Good.", "What is 3 x 50?"])
    assert not shown_then_replaced(["What is 3 x 50?"])


def test_the_planner_student_is_the_reference_row(carmen):
    report = EvalReport()
    turn_level([(carmen, dialogue(Turn("teacher", "Why add?", "probing"),
                                  Turn("learner", "I don't know."), Turn("teacher", "What is 3 x 50?", "focus")))],
               EvalTutor(PlannerStudent()), report)
    assert report.tutor_turns == 2 and report.model_carried_rate is None and report.coherence_rate_unguarded is None
    assert report.coherence_rate == 1.0 and report.shown_then_replaced == 0
    assert "—" in report.table().splitlines()[1]  # no drafts to pass


def test_the_scripted_learner_reacts_to_the_tutors_words(carmen):
    turn = plan_turn(carmen, PlannerState(), "I think it is 350.", RevealPolicy())
    misled = ScriptedLearner(carmen, dialogue(), seed=0)
    assert misled.respond("That's right, well done! What next?", turn) == "Great, so it is 350."

    # naming the step's quantities or operation raises its chance; doubt lowers it after a right value
    def right_share(text: str, last_right: bool = False) -> float:
        hits = 0
        for seed in range(400):
            learner = ScriptedLearner(carmen, dialogue(), seed=seed)
            learner.last_right = last_right
            hits += learner.respond(text, turn).startswith("Is it 150")
        return hits / 400
    vague, about_step = right_share("What do you think?"), right_share("What do 3 bids of $50 add?")
    assert about_step > vague + 0.08
    assert right_share("Not quite. What do you think?", last_right=True) < vague - 0.08


def test_success_at_5_differs_between_models_that_phrase_the_same_plan_differently(apples):
    def success(reply: str) -> float:
        pairs = [(apples, Dialogue(f"d{i}", apples.id, (), LearnerProfile(incorrect_solution="3 - 5 = 2\n 2")))
                 for i in range(60)]
        report = EvalReport()
        interactive(pairs, EvalTutor(FakeBackend([reply])), report, 2, lambda p, d: ScriptedLearner(p, d, seed=0))
        return report.success_at_5
    assert success("2 isn't right. What do you get if you add the 3 apples and the 5 more?") > success(
        "How did you get 2?")


def test_every_eval_table_has_the_planner_as_its_reference_row(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["eval", "--backend", "fake", "--limit", "3", "--attacks", "4", "--out", str(out)]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:4]]
    assert rows == ["planner", "fake", "human"]
    figures = json.loads(out.read_text())  # the evaluated student's figures, not the reference's
    assert figures["details"]["model"] == "fake" and figures["model_carried_rate"] is not None
    # every draft not sent whole is tallied under its first reason
    assert sum(figures["details"]["draft_failures"].values()) == pytest.approx(1 - figures["model_carried_rate"], abs=1e-3)
