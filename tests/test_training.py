"""distill -> train -> register -> serve, end to end on a tiny random model (seconds)."""

import json

import pytest

from tutor.cli import main
from tutor.config import DIALOGUES_FILE
from tutor.domain.prompting import DECISION_FORMAT, SPINE_FORMAT
from tutor.evaluation.data import is_validation, load_eval_dialogues, split
from tutor.model.registry import Registry
from tutor.model.transformers_backend import TransformersBackend
from tutor.storage.store import Store
from tutor.training.distill import distill


@pytest.fixture(scope="module")
def pairs():
    return load_eval_dialogues(DIALOGUES_FILE)


def test_the_validation_slice_is_fixed_by_problem_and_never_distilled(pairs, tmp_path):
    validation = split(pairs, "validation")
    assert 0.05 < len(validation) / len(pairs) < 0.2
    assert {p.id for p, _ in validation}.isdisjoint({p.id for p, _ in split(pairs, "train")})
    report = distill(pairs, tmp_path, progress=lambda _: None)
    records = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert len(records) == report.dialogues == len(split(pairs, "train"))
    assert not any(is_validation(r["problem_id"]) for r in records)
    assert report.sha256 and json.loads((tmp_path / "report.json").read_text())["targets"] == report.targets


def test_distilled_dialogues_teach_tagged_tutor_turns_and_never_a_give_away(pairs, tmp_path):
    report = distill(pairs, tmp_path, progress=lambda _: None)
    record = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[0])
    roles = [m["role"] for m in record["messages"]]
    assert roles[0] == "system" and set(roles[1:]) == {"user", "assistant"}
    tutor = [m for m in record["messages"] if m["role"] == "assistant"]
    assert all(m["content"].startswith(("[focus] ", "[probing] ", "[telling] ", "[generic] ")) for m in tutor)
    learner = [m for m in record["messages"] if m["role"] == "user"]
    assert all("\n(learner: " in m["content"] and "; tutor: " in m["content"] for m in learner)  # the planner's turn
    # every turn is taught as the product would send it, so no target gives the answer away
    assert report.targets + sum(report.masked.values()) == sum(
        1 for p, d in split(pairs, "train") for t in d.turns if t.role == "teacher")
    assert set(report.masked) <= {"no move label"}
    from tutor.domain.steps import final_answer_value
    from tutor.evaluation.metrics import states_final_answer

    bank = {p.id: p for p, _ in pairs}
    for line in (tmp_path / "sft.jsonl").read_text().splitlines():
        record = json.loads(line)
        final, said = final_answer_value(bank[record["problem_id"]]), ""
        for message in record["messages"][1:]:
            if message["role"] == "user":
                said += " " + message["content"].split("\n(learner: ")[0]
            elif message["train"]:
                from tutor.domain.arithmetic import numbers_in

                stated = final in numbers_in(said)
                # a partial hint may ask the last step's calculation ("what is 200 + 300?")
                assert not states_final_answer(message["content"], final, stated, True), message["content"]


def test_only_turns_the_product_would_send_as_written_are_taught(pairs, tmp_path):
    from tutor.config import VOCABULARY_FILE
    from tutor.domain.faithfulness import load_vocabulary

    report = distill(pairs[:60], tmp_path, vocabulary=load_vocabulary(VOCABULARY_FILE), progress=lambda _: None)
    taught = [m["content"] for line in (tmp_path / "sft.jsonl").read_text().splitlines()
              for m in json.loads(line)["messages"] if m["role"] == "assistant" and m["train"]]
    asking = [text for text in taught if text.startswith(("[focus] ", "[probing] "))]
    # each target is what the product would send: the spine carried, so a focus or probing turn asks
    assert asking and all("?" in text for text in asking)
    assert set(report.target_sources) == {"human", "planner"}
    assert sum(report.target_sources.values()) == report.targets
    # in the decision format (v2-v5), a human turn the product would not send is context only
    old = distill(pairs[:60], tmp_path / "decision", vocabulary=load_vocabulary(VOCABULARY_FILE),
                  prompt_format=DECISION_FORMAT, progress=lambda _: None)
    assert old.masked["does not ask the learner anything"] > 0
    assert not any(char.isdigit() for kind in old.masked for char in kind)  # tallied by kind, not by number


def test_distill_train_register_and_serve_a_tiny_student(pairs, tmp_path, tiny_model_dir, capsys):
    data_dir, models = tmp_path / "data", tmp_path / "models"
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(d.to_json()) + "\n" for _, d in split(pairs, "train")[:4]))
    assert main(["distill", "--dialogues", str(few), "--data-dir", str(data_dir)]) == 0

    code = main(["train", "sft", "--base", str(tiny_model_dir), "--max-steps", "2", "--batch-size", "2",
                 "--max-length", "4096", "--models-dir", str(models), "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "step 2/2" in out and "registered v1 as candidate" in out

    store = Store(data_dir / "tutor.db")
    run = store.training_runs()[0]
    assert (run.status, run.step, run.total_steps, run.version) == ("done", 2, 2, "v1")
    assert run.loss > 0
    registry = Registry(models, store)
    manifest = registry.manifest("v1")
    assert manifest["base"] == tiny_model_dir.name and manifest["prompt_format"] == SPINE_FORMAT
    assert manifest["data"]["sha256"] and manifest["data"]["distill"]["dialogues"] == 4
    assert manifest["training"]["config"]["lora_r"] == 16 and manifest["training"]["steps"] == 2
    assert registry.alias("candidate") == "v1" and registry.alias("champion") is None

    assert main(["models", "--models-dir", str(models), "--data-dir", str(data_dir), "promote", "v1"]) == 0
    adapter = registry.resolve("champion")
    assert adapter == models / "v1"
    student = TransformersBackend(tiny_model_dir, adapter, dtype="float32")
    assert student.prompt_format == SPINE_FORMAT and student.version.endswith("+v1")


def test_a_failed_run_says_why_in_its_row(tmp_path, tiny_model_dir, capsys):
    code = main(["train", "sft", "--base", str(tiny_model_dir), "--dataset", str(tmp_path / "missing.jsonl"),
                 "--models-dir", str(tmp_path / "models"), "--data-dir", str(tmp_path / "data")])
    assert code == 1
    run = Store(tmp_path / "data" / "tutor.db").training_runs()[0]
    assert run.status == "failed" and "missing.jsonl" in run.message
    assert not (tmp_path / "models" / "v1").exists()


def test_kd_distils_a_tiny_teachers_logits_with_gkd(pairs, tmp_path, tiny_model_dir):
    from tests.tiny_model import build_tiny_model
    from tutor.training.sft import TrainSettings, train

    teacher = build_tiny_model(tmp_path / "teacher", seed=1)
    distill(split(pairs, "train")[:2], tmp_path / "data", progress=lambda _: None)
    result = train(tiny_model_dir, tmp_path / "data" / "sft.jsonl", tmp_path / "kd",
                   TrainSettings(kd=True, max_steps=2, batch_size=2, max_length=4096), teacher_path=teacher)
    assert result.steps == 2 and result.final_loss is not None
    assert (tmp_path / "kd" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "kd" / "checkpoints").exists()  # a version folder holds what ships, nothing else


def test_kd_refuses_a_teacher_with_another_tokenizer(pairs, tmp_path, tiny_model_dir):
    from tests.tiny_model import build_tiny_model
    from tutor.training.sft import TrainSettings, train

    teacher = build_tiny_model(tmp_path / "teacher", vocab_size=280)
    distill(split(pairs, "train")[:1], tmp_path / "data", progress=lambda _: None)
    with pytest.raises(ValueError, match="tokenizer"):
        train(tiny_model_dir, tmp_path / "data" / "sft.jsonl", tmp_path / "kd",
              TrainSettings(kd=True, max_steps=1, batch_size=2), teacher_path=teacher)


def test_a_teacher_models_turns_are_kept_only_when_they_pass_the_guard_and_filters(bank, tmp_path):
    from tutor.evaluation.harness import EvalTutor
    from tutor.model.fake import FakeBackend
    from tutor.training.distill import DistillReport, teacher_records

    problems = [p for p in bank if not is_validation(p.id) and p.solution][:3]
    teacher = FakeBackend(["Which two numbers should we multiply first?", "The answer is clearly 123456."])
    report = DistillReport()
    records = list(teacher_records(problems, EvalTutor(teacher), report, turns=2))
    assert len(records) == 3 and report.sources["teacher"] == 3
    taught = [m for r in records for m in r["messages"] if m["role"] == "assistant" and m["train"]]
    assert taught and all("123456" not in m["content"] for m in taught)  # the made-up number is never taught
    assert report.targets == len(taught) == sum(report.target_sources.values())
    assert report.target_sources["planner"] > 0  # where the teacher's words failed, the planner's carry the turn
    notes = [m["content"] for r in records for m in r["messages"] if m["role"] == "user"]
    assert all("; tutor: " in note for note in notes)  # the spine format's notes


def test_distill_with_a_teacher_adds_its_dialogues(pairs, tmp_path, capsys):
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(d.to_json()) + "\n" for _, d in split(pairs, "train")[:2]))
    assert main(["distill", "--dialogues", str(few), "--teacher", "fake", "--limit", "5",
                 "--teacher-turns", "2", "--data-dir", str(tmp_path / "data")]) == 0
    report = json.loads((tmp_path / "data" / "distill" / "report.json").read_text())
    assert report["sources"]["human"] == 2 and report["sources"]["teacher"] >= 3


class Sampler:
    """A student whose sampled drafts are scripted; records each prompt's forced opening."""

    prompt_format = DECISION_FORMAT
    version = "sampler"

    def __init__(self, drafts):
        self.drafts, self.openings = list(drafts), []

    def samples(self, messages, params, n):
        from tutor.model.backend import Output

        self.openings.append((messages[-1].role, messages[-1].content))
        return [Output(text) for text in self.drafts[:n]]


def test_a_resampled_turn_is_the_students_first_draft_that_passes_with_the_humans_move(bank):
    from tests.conftest import CARMEN_ID
    from tutor.domain.planner import PlannerState
    from tutor.domain.policy import RevealPolicy
    from tutor.domain.tutoring import plan_turn
    from tutor.training.distill import Resampler

    carmen = bank.get(CARMEN_ID)
    wrong = plan_turn(carmen, PlannerState(), "I think it is 350.", RevealPolicy())
    student = Sampler(["Yes, that's right!", "The desk costs 500.", "350 isn't right. How much do the 3 other bids add?"])
    assert Resampler(student, 3).passing(carmen, wrong, [], "I think it is 350.", "focus") == \
        "350 isn't right. How much do the 3 other bids add?"  # praise of a wrong value and the answer are skipped
    assert student.openings == [("assistant", "[focus] ")]  # the human's move, forced
    assert Resampler(student, 2).passing(carmen, wrong, [], "I think it is 350.", "focus") is None
    # a move the planner does not allow here (no telling before a partial hint) is not resampled
    assert Resampler(student, 3).passing(carmen, wrong, [], "I think it is 350.", "telling") is None
    assert len(student.openings) == 2


def test_resampled_dialogues_keep_the_humans_moves_and_their_words_where_no_draft_passes(pairs):
    from tutor.domain.faithfulness import load_vocabulary
    from tutor.config import VOCABULARY_FILE
    from tutor.domain.prompting import read_move_tag
    from tutor.training.distill import DistillReport, Resampler, human_records

    class Echo(Sampler):  # a student of the spine format that says the planner's turn in its note
        prompt_format = SPINE_FORMAT

        def samples(self, messages, params, n):
            from tutor.model.backend import Output

            self.openings.append((messages[-1].role, messages[-1].content))
            return [Output(messages[-2].content.split("; tutor: ", 1)[1].rstrip(")"))]

    few = split(pairs, "train")[:6]
    vocabulary = load_vocabulary(VOCABULARY_FILE)
    plain = DistillReport()
    human = list(human_records(few, plain, vocabulary=vocabulary))
    student = Echo([])
    report = DistillReport()
    records = list(human_records(few, report, vocabulary=vocabulary, resampler=Resampler(student, 1), workers=2))
    assert [r["dialogue_id"] for r in records] == [r["dialogue_id"] for r in human]  # same order
    resampled = 0
    for ours, theirs in zip(records, human):
        for mine, original in zip(ours["messages"], theirs["messages"]):
            if mine["role"] != "assistant":
                continue
            move, text = read_move_tag(mine["content"])
            assert move == read_move_tag(original["content"])[0]  # the moves stay
            # a changed target is a resampled one (the planner's own turn, echoed, may equal the human's target)
            resampled += mine != original
    assert 0 < resampled <= report.resampled
    assert report.targets == plain.targets
    assert student.openings and all(content.startswith("[") and content.endswith("] ")
                                    for _, content in student.openings)


def test_sft_can_train_a_versions_adapter_on_instead_of_a_new_one(pairs, tmp_path, tiny_model_dir, capsys):
    from safetensors.torch import load_file

    data_dir, models = tmp_path / "data", tmp_path / "models"
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(d.to_json()) + "\n" for _, d in split(pairs, "train")[:2]))
    assert main(["distill", "--dialogues", str(few), "--data-dir", str(data_dir)]) == 0
    common = ["--base", str(tiny_model_dir), "--max-steps", "1", "--batch-size", "2", "--max-length", "4096",
              "--models-dir", str(models), "--data-dir", str(data_dir)]
    assert main(["train", "sft", *common, "--lora-r", "4"]) == 0
    # learning rate 0: the child is its parent's adapter, rank and all (not a fresh rank-16 one)
    assert main(["train", "sft", *common, "--parent", "v1", "--lr", "0"]) == 0, capsys.readouterr().out
    parent, child = (load_file(models / v / "adapter_model.safetensors") for v in ("v1", "v2"))
    assert parent.keys() == child.keys() and all((parent[k] == child[k]).all() for k in parent)
    manifest = Registry(models, Store(data_dir / "tutor.db")).manifest("v2")
    assert manifest["parent"] == "v1"
    capsys.readouterr()
    assert main(["train", "sft", *common, "--parent", "v9"]) == 2
    assert "No model version 'v9'" in capsys.readouterr().err
