"""The pedagogical judge: its data (MRBench split by conversation, contrast pairs, the store's
verdicts), training and scoring on a tiny encoder, the CLI's tables, best of several drafts."""

import json
import random

import pytest

from tests.conftest import CARMEN_ID
from tutor.domain.prompting import MOVES_FORMAT
from tutor.judge.data import (
    CONTENT_FREE,
    DIMENSIONS,
    PRAISE,
    REVEALING,
    Exchange,
    build_rows,
    contrast_rows,
    exchange_before,
    mrbench_rows,
    parse_history,
    read_mrbench,
    split_of,
    stored_rows,
    write_dataset,
)
from tutor.judge.model import Judgement
from tutor.model.fake import FakeBackend
from tutor.service import TutorService

STUCK = "I don't know."
LOOK = "Let us look at the other people's bids."
ASK = "Which bids did the 3 other people make?"
ASK_TOO = "What did each of the 3 other people bid?"


@pytest.fixture(scope="module")
def conversations():
    return read_mrbench()


@pytest.fixture(scope="module")
def small_mrbench(tmp_path_factory, conversations):
    """Six conversations of MRBench, three of each of our splits, in its own format."""
    from tutor.judge.data import MRBENCH_FILE

    chosen = ([c.id for c in conversations if split_of(c.group) == "validation"][:3]
              + [c.id for c in conversations if split_of(c.group) == "train"][:3])
    path = tmp_path_factory.mktemp("mrbench") / "small.jsonl"
    lines = [line for line in MRBENCH_FILE.read_text(encoding="utf-8").splitlines()
             if line.strip() and json.loads(line)["conversation_id"] in chosen]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_mrbench_splits_by_conversation_and_no_validation_conversation_reaches_training(conversations):
    rows, validation = build_rows()
    held_out = {row.group for row in validation}
    assert held_out and all(split_of(g) == "validation" for g in held_out)
    assert not held_out & {row.group for row in rows}  # contrast pairs and MathDial turns of them neither
    assert not {row.conversation for row in validation} & {row.conversation for row in rows}
    seen = {(row.exchange.text(), row.response) for row in validation}
    assert not any((row.exchange.text(), row.response) in seen for row in rows)
    # the file merges two releases: copies of a conversation (ids "…_1", "…_2") share a split
    copies = {}
    for conversation in conversations:
        copies.setdefault(conversation.id.rsplit("_", 1)[0], set()).add(split_of(conversation.group))
    assert all(len(splits) == 1 for splits in copies.values())
    assert {row.source for row in validation} == {"mrbench"}
    assert {"mrbench", "contrast", "mathdial"} <= {row.source for row in rows}
    every = mrbench_rows(conversations)
    assert len(every) == 1875 and len(validation) + sum(r.source == "mrbench" for r in rows) == len(every)


def test_a_conversations_last_learner_message_and_the_tutor_turn_before_it_are_read(conversations):
    record = next(c for c in conversations if c.id.startswith("100-540b6009"))
    assert "old records" in record.exchange.problem and record.exchange.answer == "14"
    assert record.exchange.tutor == "could you please walk me through your solution?"
    assert record.exchange.learner.startswith("Sure! I started by figuring out")
    turns = parse_history("Tutor: What is 2+2?\xa0\n\xa0Student: 5\n Tutor: Are you sure?\n Student: yes")
    assert turns == [("tutor", "What is 2+2?"), ("learner", "5"), ("tutor", "Are you sure?"), ("learner", "yes")]
    # the learner's message first: a length limit cuts the problem, not the mistake
    assert Exchange("A long problem", "8", "How many?", "7").text().startswith("Student: 7 | Tutor: How many?")


def test_contrast_pairs_change_the_labels_the_change_implies(conversations):
    row = next(r for r in mrbench_rows(conversations) if r.labels["Revealing_of_the_Answer"] == "No"
               and r.exchange.answer and r.exchange.answer not in r.response and any(ch.isdigit() for ch in r.response))
    made = {variant.response: variant for variant in contrast_rows(row, random.Random(0))}
    stated = made[f"{row.response} The answer is {row.exchange.answer}."]
    assert stated.labels["Revealing_of_the_Answer"] == REVEALING[1] and stated.quality < 1
    false_answer = next(v for text, v in made.items() if text.startswith(row.response + " The answer is ")
                        and v is not stated)
    assert false_answer.labels["Revealing_of_the_Answer"] == REVEALING[2]
    praise = next(v for text, v in made.items() if text in PRAISE)
    assert praise.labels["Mistake_Identification"] == "No" and praise.labels["Providing_Guidance"] == "No"
    stripped = next(v for text, v in made.items() if text in CONTENT_FREE)
    assert stripped.labels["Actionability"] == "No" and stripped.labels["Providing_Guidance"] == "No"
    repeated = made[row.exchange.tutor]
    assert repeated.labels["Coherence"] == "No"
    false_number = next(v for v in made.values() if v.labels == {**dict.fromkeys(DIMENSIONS), "Coherence": "No"}
                        and v.response != row.exchange.tutor)
    assert false_number.response != row.response and len(false_number.response) >= len(row.response) - 2
    assert all(v.source == "contrast" and v.conversation == row.conversation for v in made.values())
    # after any learner message (a human teacher's turn), praise may be right: no praise variant
    assert not any(v.response in PRAISE for v in contrast_rows(row, random.Random(0), False))


def test_refused_drafts_and_teachers_reviews_become_rows_and_the_manifest_counts_sources(store, bank, accounts,
                                                                                         school, tmp_path):
    student = FakeBackend([f"focus] {LOOK} You are right!", f"focus] {LOOK} {ASK}"], prompt_format=MOVES_FORMAT)
    service = TutorService(store, bank, student, draft_tries=2)
    learner = school.ann
    conversation = service.start_bank_session(learner, CARMEN_ID)
    *_, last = service.reply(conversation, STUCK)
    accounts.review(school.tom, last.message.id, {"correct": True, "socratic": True, "no_leak": False,
                                                        "encouraging": None}, rewrite="What did each person bid?")
    rows = stored_rows(store)
    refused = [r for r in rows if r.source == "checks"]
    assert [r.response for r in refused] == [f"{LOOK} You are right!"] and refused[0].quality < 0.5
    # refused for praising a learner who is stuck: the mistake not identified, incoherent
    assert refused[0].labels["Mistake_Identification"] == "No" and refused[0].labels["Coherence"] == "No"
    assert refused[0].exchange.learner == STUCK and "Carmen" in refused[0].exchange.problem
    rewrite, = [r for r in rows if r.tutor == "teacher rewrite"]
    reviewed, = [r for r in rows if r.tutor == "reviewed turn"]
    assert rewrite.quality == 1.0 and reviewed.quality <= 0.5  # a rewrite says the turn fell short
    assert reviewed.labels["Revealing_of_the_Answer"] == REVEALING[1] and reviewed.labels["Providing_Guidance"] == "Yes"
    train, validation = build_rows(store, mathdial_limit=10)
    manifest = write_dataset(train, validation, tmp_path)
    assert manifest.counts["checks"] == {"train": 1} and manifest.counts["reviews"] == {"train": 2}
    assert manifest.counts["mrbench"]["validation"] == len(validation)
    assert json.loads((tmp_path / "manifest.json").read_text())["sha256"] == manifest.sha256


def test_exchange_before_a_stored_turn_reads_the_turns_before_it(store, bank):
    service = TutorService(store, bank, FakeBackend(["How did you get 350?"]))
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, "350"))
    list(service.reply(conversation, STUCK))
    transcript = service.transcript(conversation)
    second = [m for m in transcript if m.role == "tutor"][-1]
    exchange = exchange_before(conversation.problem, transcript, second.id)
    assert exchange.learner == STUCK and exchange.tutor == transcript[1].content and exchange.answer == "500"


def test_a_tiny_judge_scores_every_dimension_and_reloads_the_same(tiny_judge):
    from tutor.judge.model import Judge

    exchange = Exchange("Tom has 3 apples and buys 5 more.", "8", "How many now?", "7")
    judged = tiny_judge.score_many([(exchange, "Not quite: count again. What is 3 + 5?"), (exchange, "8.")])
    for judgement in judged:
        assert set(judgement.probabilities) == set(DIMENSIONS)
        assert all(abs(sum(p) - 1) < 1e-5 for p in judgement.probabilities.values())
        assert 0 < judgement.score < 1 and set(judgement.labels()) == set(DIMENSIONS)
        assert judgement.summary().startswith("judge ")
    again = Judge(tiny_judge.folder).score(exchange, "8.")
    assert abs(again.score - judged[1].score) < 1e-5  # the saved LoRA and heads are what scores
    adapter = sum(f.stat().st_size for f in tiny_judge.folder.rglob("*") if f.is_file())
    assert adapter < 25_000_000


def test_scoring_reports_macro_f1_per_dimension_pairwise_accuracy_and_the_baseline(conversations):
    import numpy as np

    from tutor.judge.scoring import baseline_predictor, evaluate, pairwise, table

    rows = mrbench_rows(conversations, "validation")
    perfect = evaluate("truth", rows, lambda rs: ([{d: r.labels[d] for d in DIMENSIONS if r.labels[d]} for r in rs],
                                                  [r.quality for r in rs]))
    assert all(f.macro_f1 == 1.0 and f.accuracy == 1.0 for f in perfect.dimensions.values())
    assert perfect.pairwise == 1.0 and perfect.pairs > 0
    assert pairwise(rows, [-(r.quality or 0) for r in rows])[0] == 0  # reversed: every pair wrong

    def embed(texts):  # a stand-in for MiniLM: a hash of each word into 64 dims
        vectors = np.zeros((len(texts), 64))
        for i, text in enumerate(texts):
            for word in text.lower().split():
                vectors[i, hash(word) % 64] += 1
        return vectors
    train = mrbench_rows(conversations, "train")
    baseline = evaluate("baseline", rows, baseline_predictor(train, embed))
    assert 0 < baseline.dimensions["Mistake_Identification"].macro_f1 < 1
    text = table([perfect, baseline])
    assert "MI" in text and "shared task best" in text and "0.718" in text and "pairwise" in text


def run_cli(*argv) -> int:
    from tutor.cli import main

    return main(list(argv))


def test_judge_train_registers_a_version_and_score_prints_the_table(tmp_path, small_mrbench, capsys):
    from tests.tiny_model import build_tiny_encoder

    base = build_tiny_encoder(tmp_path / "tiny-bert")
    judges = tmp_path / "judges"
    assert run_cli("judge", "train", "--base", str(base), "--max-steps", "2", "--batch-size", "4",
                   "--mathdial-limit", "10", "--mrbench", str(small_mrbench), "--judges-dir", str(judges),
                   "--promote", "--data-dir", str(tmp_path / "data")) == 0
    manifest = json.loads((judges / "j1" / "manifest.json").read_text())
    assert json.loads((judges / "aliases.json").read_text()) == {"champion": "j1"}
    assert manifest["data"]["counts"]["mrbench"]["validation"] > 0 and manifest["training"]["steps"] == 2
    assert set(manifest["validation"]["dimensions"]) >= {"MI", "PG", "RA"}
    capsys.readouterr()
    assert run_cli("judge", "score", "--mrbench", str(small_mrbench), "--split", "validation",
                   "--judges-dir", str(judges), "--no-baseline", "--json", str(tmp_path / "f.json")) == 0
    out = capsys.readouterr().out
    assert "judge j1" in out and "MI" in out and "PG" in out and "responses" in out
    assert json.loads((tmp_path / "f.json").read_text())["judge j1"]["dimensions"]["MI"]["n"] > 0


def test_eval_mrbench_puts_our_turns_beside_the_annotated_tutors(tiny_judge, small_mrbench, tmp_path, capsys):
    out = tmp_path / "turns.jsonl"
    assert run_cli("eval", "--mrbench", str(small_mrbench), "--backend", "planner", "--judge",
                   str(tiny_judge.folder), "--out", str(out), "--data-dir", str(tmp_path)) == 0
    printed = capsys.readouterr().out
    for row in ("ours (planner), judged", "GPT4, annotated", "GPT4, judged", "Expert, annotated", "Sonnet, judged"):
        assert row in printed
    assert "6 conversations:" in printed and "explain mode" in printed
    turns = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(turns) == 6 and all(t["text"] and set(t["judged"]) == set(DIMENSIONS) for t in turns)
    assert run_cli("eval", "--mrbench", str(tmp_path / "missing.jsonl"), "--backend", "planner",
                   "--data-dir", str(tmp_path)) == 2


GOOD = {d: (0.0, 0.0, 1.0) if classes[2] == "Yes" else (1.0, 0.0, 0.0) for d, classes in DIMENSIONS.items()}
BAD = {d: (1.0, 0.0, 0.0) if classes[2] == "Yes" else (0.0, 0.0, 1.0) for d, classes in DIMENSIONS.items()}


class PrefersTheSecond:
    """A stand-in judge: a turn with the word in it is good on every dimension, others bad."""

    version = "j-test"

    def __init__(self, word: str):
        self.word = word
        self.calls = []

    def score_many(self, items):
        self.calls.append(items)
        return [Judgement(GOOD if self.word in turn else BAD) for _, turn in items]


class Engine(FakeBackend):
    """A serving engine's interface: a spare draft while idle (always, here)."""

    def generate(self, messages, params, since=None):
        return super().generate(messages, params)

    def generate_if_idle(self, messages, params, since=None):
        return self.generate(messages, params)


def test_the_judge_picks_the_best_of_several_passing_drafts(store, bank):
    student = Engine([f"focus] {LOOK} {ASK}", f"focus] {LOOK} {ASK_TOO}"], prompt_format=MOVES_FORMAT)
    judge = PrefersTheSecond("each")
    service = TutorService(store, bank, student, judge=judge, draft_candidates=2)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, STUCK)
    assert last.text == f"{LOOK} {ASK_TOO}" and len(student.calls) == 2
    ranking = last.message.planner_state["ranking"]
    assert ranking["chosen"] == 1 and [c["score"] for c in ranking["candidates"]] == [0.0, 1.0]
    assert judge.calls[0][0][0].learner == STUCK  # read in its conversation
    assert student.params[0].temperature == 0 < student.params[1].temperature
    one = TutorService(store, bank, Engine([f"focus] {LOOK} {ASK}", f"focus] {LOOK} {ASK_TOO}"],
                                           prompt_format=MOVES_FORMAT), judge=judge, draft_candidates=1)
    conversation = one.start_bank_session(one.local_learner(), CARMEN_ID)
    *_, last = one.reply(conversation, STUCK)
    assert last.text == f"{LOOK} {ASK}" and "ranking" not in last.message.planner_state  # K = 1: no ranking


def test_a_failing_candidate_is_never_ranked_and_one_passing_draft_is_sent_unranked(store, bank):
    student = Engine([f"focus] {LOOK} {ASK}", f"focus] {LOOK} You are right!"], prompt_format=MOVES_FORMAT)
    judge = PrefersTheSecond("right")
    service = TutorService(store, bank, student, judge=judge, draft_candidates=2, draft_tries=2)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, STUCK)
    assert last.text == f"{LOOK} {ASK}" and not judge.calls  # the second failed its checks
    state = last.message.planner_state
    assert "ranking" not in state and state["guard"]["tries"][0]["output"] == f"focus] {LOOK} You are right!"


def test_without_an_engine_or_when_the_judge_fails_the_first_passing_draft_goes_out(store, bank):
    class Broken(PrefersTheSecond):
        def score_many(self, items):
            from tutor.errors import ModelError
            raise ModelError("the judge's weights are gone")

    replies = [f"focus] {LOOK} {ASK}", f"focus] {LOOK} {ASK_TOO}"]
    plain = TutorService(store, bank, FakeBackend(replies, prompt_format=MOVES_FORMAT),
                         judge=PrefersTheSecond("each"), draft_candidates=2)  # transformers, an endpoint
    conversation = plain.start_bank_session(plain.local_learner(), CARMEN_ID)
    *_, last = plain.reply(conversation, STUCK)
    assert last.text == f"{LOOK} {ASK}" and len(plain.student.calls) == 1  # no one waits for candidates
    broken = TutorService(store, bank, Engine(replies, prompt_format=MOVES_FORMAT), judge=Broken("each"),
                          draft_candidates=2)
    conversation = broken.start_bank_session(broken.local_learner(), CARMEN_ID)
    *_, last = broken.reply(conversation, STUCK)
    assert last.text == f"{LOOK} {ASK}" and last.message.model_version == "fake"
    assert broken.judged_turns(conversation) == {}


def test_a_busy_engine_writes_no_further_candidates(store, bank):
    class Busy(FakeBackend):  # an engine with other learners' replies to decode: no spares
        def generate(self, messages, params, since=None):
            return super().generate(messages, params)

        def generate_if_idle(self, messages, params, since=None):
            return None

    student = Busy([f"focus] {LOOK} {ASK}", f"focus] {LOOK} {ASK_TOO}"], prompt_format=MOVES_FORMAT)
    judge = PrefersTheSecond("each")
    service = TutorService(store, bank, student, judge=judge, draft_candidates=4)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, STUCK)
    assert last.text == f"{LOOK} {ASK}" and len(student.calls) == 1 and not judge.calls


def test_the_gate_reads_judge_rates_inside_the_figures():
    from tutor.evaluation.gate import GATE, figure, judge

    champion = {"judge_score": 0.70, "judge_rates": {"PG": 0.80, "RA": 0.95, "Coh": 0.9}}
    worse = {"judge_score": 0.60, "judge_rates": {"PG": 0.80, "RA": 0.95, "Coh": 0.9}}
    assert figure(champion, "judge_rates.PG") == 0.80 and figure({}, "judge_rates.PG") is None
    verdict = judge(champion, worse, tuple(g for g in GATE if g.metric.startswith("judge")))
    assert not verdict["passed"]
    assert [r["label"] for r in verdict["rows"] if not r["passed"]] == ["judge score"]


def test_the_evaluation_table_carries_the_judges_reading(tmp_path):
    from tutor.config import DIALOGUES_DIR
    from tutor.evaluation.data import load_eval_dialogues, split
    from tutor.evaluation.harness import EvalTutor, evaluate, table
    from tutor.model.loading import load_backend

    pairs = split(load_eval_dialogues(DIALOGUES_DIR), "validation")[:1]
    report = evaluate(pairs, EvalTutor(load_backend("planner", data_dir=tmp_path), judge=PrefersTheSecond("?")),
                      attacks=0)
    assert report.judge_score is not None and set(report.judge_rates) == {"MI", "ML", "RA", "PG", "Act", "Coh",
                                                                          "Tone", "HL"}
    assert report.details["human"]["judge_score"] is not None
    printed = table([report])
    assert "judge score" in printed and "judge PG" in printed


def test_a_teachers_review_that_disagrees_with_the_judge_is_said_so():
    judgement = Judgement(GOOD)
    assert judgement.score == 1.0 and Judgement(BAD).score == 0.0
    said = judgement.disagreements({"correct": True, "socratic": False, "no_leak": True, "encouraging": None},
                                   rewritten=True)
    assert said == ["socratic: you said no, the judge yes", "you rewrote a turn the judge scored 1.00"]
    assert judgement.disagreements({"socratic": True, "no_leak": True}) == []


def test_the_heads_are_fitted_again_on_the_annotated_responses_alone(tiny_judge, tmp_path):
    from safetensors.torch import load_file

    from tutor.judge.train import JudgeSettings, train_judge

    rows, _ = build_rows(mathdial_limit=10)
    annotated = [row for row in rows if row.source == "mrbench"][:120]
    settings = JudgeSettings(head_c=(0.1, 1.0))
    result = train_judge(annotated + [row for row in rows if row.source == "contrast"][:20], tmp_path / "j2", settings,
                         parent=tiny_judge.folder)
    assert result.steps == 0 and 0 < result.head_cv_macro_f1 <= 1
    assert {choice["C"] for choice in result.heads.values()} <= {0.1, 1.0} and "MI" in result.heads
    before, after = load_file(str(tiny_judge.folder / "heads.safetensors")), load_file(str(tmp_path / "j2" / "heads.safetensors"))
    assert not (before["heads.weight"] == after["heads.weight"]).all()
    assert (tmp_path / "j2" / "adapter" / "adapter_config.json").exists()  # the parent's encoder, copied
