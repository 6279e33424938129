"""The real embedded default: SmolLM2-135M-Instruct converted from the wheel's GGUF."""

import json
import time

import pytest

from tests.conftest import CARMEN_ID
from tutor.model.backend import GenerationParams
from tutor.model.embedded import EMBEDDED_NAME, gguf_path, provision_embedded
from tutor.bootstrap import open_service
from tutor.config import MODELS_DIR, Settings
from tutor.model.registry import Registry

pytestmark = pytest.mark.embedded

# the version a fresh clone serves (models/aliases.json)
SHIPPED = json.loads((MODELS_DIR / "aliases.json").read_text())["champion"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_gguf_ships_inside_the_installed_package():
    assert gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_first_run_converts_once_and_later_runs_reuse_it(data_dir):
    progress = []
    converted = provision_embedded(data_dir, progress.append)
    assert (converted / "model.safetensors").exists()
    assert any("converting" in line for line in progress)

    again = []
    started = time.perf_counter()
    assert provision_embedded(data_dir, again.append) == converted
    assert again == [] and time.perf_counter() - started < 1


def test_the_embedded_base_tutors_a_turn_end_to_end(data_dir):
    """The app's own assembly on the untrained base: MiniLM exemplars cached in the data dir."""
    service = open_service(Settings(data_dir=data_dir, model="base"), progress=lambda _: None)
    assert service.student.version == EMBEDDED_NAME
    assert list((data_dir / "cache").glob("teacher-turns-*.npy"))
    service.params = GenerationParams(max_new_tokens=24, temperature=0)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, "I think the desk costs $350.")
    assert len(last.message.planner_state["exemplars"]) == 2
    guard = last.message.planner_state["guard"]
    assert guard["draft"].strip() and guard["draft_model_version"] == EMBEDDED_NAME
    # the untrained base model's draft is used only if it passes the checks, or up to where it failed
    expected = EMBEDDED_NAME if guard["passed"] else "planner"
    assert last.message.model_version == expected and last.message.content.strip()


def test_a_fresh_clone_serves_the_shipped_champion(data_dir):
    service = open_service(Settings(data_dir=data_dir), progress=lambda _: None)
    assert service.student.version == f"{EMBEDDED_NAME}+{SHIPPED}"
    assert service.student.engine == "onnxruntime-genai int8"  # the serving engine, by default
    assert service.student.prompt_format == Registry().manifest(SHIPPED)["prompt_format"]
    service.params = GenerationParams(max_new_tokens=32, temperature=0)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, "I think the desk costs $350.")
    guard = last.message.planner_state["guard"]
    assert guard["draft_model_version"] == f"{EMBEDDED_NAME}+{SHIPPED}" and guard["draft"].strip()
    assert last.message.planner_state["exemplars"] == []  # it learned from the dialogues themselves
    assert last.message.move in ("focus", "probing")  # what the planner allows after a wrong answer
    if guard["passed"]:
        assert last.message.model_version == f"{EMBEDDED_NAME}+{SHIPPED}"
        assert not last.message.content.startswith("[") and "500" not in last.message.content


def test_eval_runs_the_embedded_base_model_and_the_champion_in_one_table(data_dir, tmp_path):
    from tutor.cli import main

    out = tmp_path / "report.json"
    assert main(["eval", "--model", "base", "champion", "--limit", "2", "--attacks", "4",
                 "--data-dir", str(data_dir), "--out", str(out)]) == 0
    base, champion = json.loads(out.read_text())  # one table, a report per model
    assert base["dialogues"] == 2 and base["tutor_turns"] > 0
    assert base["leak_rate"] == 0.0  # the guard stands between the model and the learner
    assert base["details"]["model"] == "base" and champion["details"]["model"] == SHIPPED
    assert champion["dialogues"] == 2 and champion["shown_then_replaced"] == 0


def test_eval_runs_the_shipped_champion_on_the_validation_slice(data_dir, tmp_path):
    from tutor.cli import main

    out = tmp_path / "report.json"
    assert main(["eval", "--split", "validation", "--limit", "2", "--attacks", "4",
                 "--data-dir", str(data_dir), "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["details"]["model"] == SHIPPED and figures["details"]["split"] == "validation"
    assert figures["leak_rate"] == 0.0 and figures["tutor_turns"] > 0
    # the shipped manifest carries the full validation run's figures
    shipped = Registry().manifest(SHIPPED)["evaluation"]
    assert shipped["split"] == "validation" and shipped["limit"] is None
    assert {"move_f1", "question_rate", "leak_rate_unguarded", "numbers_correct_rate", "coherence_rate",
            "shown_then_replaced", "model_carried_rate"} <= set(shipped["figures"])


def test_distill_resamples_human_turns_with_the_shipped_student(data_dir, tmp_path):
    """`distill --resample`: the real student drafts in the human turns' contexts; the targets
    it replaces are its own words, each passing the guard and the check."""
    from tutor.cli import main
    from tutor.config import DIALOGUES_FILE
    from tutor.evaluation.data import load_eval_dialogues, split

    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps(d.to_json()) + "\n" for _, d in split(load_eval_dialogues(DIALOGUES_FILE), "train")[:2]))
    out = tmp_path / "distill"
    assert main(["distill", "--dialogues", str(few), "--resample", SHIPPED, "--samples", "3",
                 "--out", str(out), "--data-dir", str(data_dir)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dialogues"] == 2 and 0 < report["resampled"] <= report["targets"]
    plain = tmp_path / "plain"  # the same dialogues in the shipped student's format, not resampled
    shipped_format = Registry().manifest(SHIPPED)["prompt_format"]
    assert main(["distill", "--dialogues", str(few), "--format", shipped_format, "--out", str(plain),
                 "--data-dir", str(data_dir)]) == 0
    ours, theirs = ((folder / "sft.jsonl").read_text().splitlines() for folder in (out, plain))
    changed = sum(a != b for x, y in zip(ours, theirs)
                  for a, b in zip(json.loads(x)["messages"], json.loads(y)["messages"]))
    # only resampled tutor turns may differ: a spine student's passing draft may be word for word
    # the planner's turn, which the plain dataset teaches there too
    assert changed <= report["resampled"]


# how far int8 weights may move the model's log-likelihood of the human teachers' turns from
# float32's (relative); measured here: +1.8% for v1, while v1 and the untrained base differ by 43%
QUANTIZED_NLL_TOLERANCE = 0.05


def _teacher_turns(prompt_format: str, limit: int) -> list:
    """The human teachers' turns of the validation split as (prompt, reply) in the student's
    format, each prompt showing the recent turns as a live turn does."""
    from tutor.config import DIALOGUES_DIR
    from tutor.domain.prompting import MOVES_HISTORY_TURNS, ChatMessage
    from tutor.evaluation.data import load_eval_dialogues, split
    from tutor.training.distill import DistillReport, human_records

    pairs = split(load_eval_dialogues(DIALOGUES_DIR / "mathdial.jsonl"), "validation")[:limit]
    turns = []
    for record in human_records(pairs, DistillReport(), prompt_format=prompt_format):
        messages = [ChatMessage(m["role"], m["content"]) for m in record["messages"]]
        turns += [(messages[:1] + messages[1:i][-MOVES_HISTORY_TURNS:], m.content)
                  for i, (m, raw) in enumerate(zip(messages, record["messages"])) if raw["train"]]
    return turns


def _nll(engine, turns) -> float:
    log_probs = engine.score(turns)
    return -sum(map(sum, log_probs)) / sum(map(len, log_probs))


def test_the_served_int8_engine_scores_the_teachers_turns_as_the_exact_one(data_dir):
    """Quantization checked where it acts, on the model's probabilities: teacher-forced on the
    human teachers' turns of the validation slice, int8 stays within the stated tolerance of
    float32 (the same greedy tokens as transformers), while the figure tells two versions apart.
    Deterministic per machine, unlike comparing greedy replies on a small slice, where one reply
    that takes another path moves a rate by 5%; the gate's own figures: the heavy test below."""
    from tutor.model.chat import adapter_prompt_format
    from tutor.model.onnx_backend import EXACT, QUANTIZATION, OnnxBackend

    base = provision_embedded(data_dir)
    champion = Registry(MODELS_DIR).resolve(SHIPPED)
    turns = _teacher_turns(adapter_prompt_format(champion), limit=6)
    assert len(turns) > 30
    engine = {quantization: OnnxBackend(base, champion, data_dir=data_dir, quantization=quantization)
              for quantization in (EXACT, QUANTIZATION)}
    exact, served = (_nll(engine[q], turns) for q in (EXACT, QUANTIZATION))
    assert QUANTIZATION != EXACT
    assert abs(served - exact) / exact <= QUANTIZED_NLL_TOLERANCE, (exact, served)
    untrained = _nll(engine[QUANTIZATION].with_adapter(None), turns)
    assert (untrained - exact) / exact > 4 * QUANTIZED_NLL_TOLERANCE, (exact, untrained)


@pytest.mark.heavy
def test_the_served_int8_engine_keeps_the_gate_figures_of_the_exact_one(data_dir):
    """The quantized engine the app serves, judged against float32 with the promotion gate's
    tolerances on the whole validation split (53 dialogues, ~25 minutes here). Not the gate's
    12-dialogue slice: there Success@5 moves in steps of one dialogue (0.083), above its 0.05
    tolerance, and the simulated learners' seed alone moves it by a step (bench/README.md), so
    on a CPU with VNNI one greedy path on one dialogue failed int8 there (0.50 -> 0.42) while
    it passed on the whole split."""
    from tutor.config import DIALOGUES_DIR
    from tutor.evaluation.gate import GateSlice, judge, measure
    from tutor.judge.registry import load_judge
    from tutor.model.onnx_backend import EXACT, QUANTIZATION, OnnxBackend

    base = provision_embedded(data_dir)
    champion = Registry(MODELS_DIR).resolve(SHIPPED)
    reader = load_judge()
    figures = {quantization: measure(OnnxBackend(base, champion, data_dir=data_dir, quantization=quantization),
                                     DIALOGUES_DIR, GateSlice(limit=None), judge=reader)
               for quantization in (EXACT, QUANTIZATION)}
    assert figures[EXACT]["dialogues"] >= 50, figures[EXACT]
    verdict = judge(figures[EXACT], figures[QUANTIZATION])
    for row in verdict["rows"]:  # shown with pytest -s
        print(f"{row['label']}: {row['champion']} -> {row['candidate']} (tolerance {row['tolerance']})")
    # int8 need not win (no promotion is asked of it): it must regress nothing past tolerance
    assert all(row["passed"] for row in verdict["rows"]), [row for row in verdict["rows"] if not row["passed"]]
    assert all(row.get("note") != "not measured" for row in verdict["rows"])
