"""Closing the loop on a tiny random model: a learner's 👎 and a teacher's rewrite become a
dataset, a DPO round trains from the champion in a worker, the gate measures it, an admin
promotes it while the service runs and rolls it back; new turns carry the served version."""

import json
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import pytest

from tests.conftest import CARMEN_ID, PASSWORD, fast_hasher
from tutor.accounts import AccountService
from tutor.errors import InvalidInput
from tutor.evaluation.gate import GATE
from tutor.judge.registry import JudgeRegistry
from tutor.model.backend import GenerationParams
from tutor.model.registry import Registry
from tutor.model.transformers_backend import TransformersBackend
from tutor.rounds import Rounds, Schedule
from tutor.service import THUMBS_DOWN, TutorService
from tutor.storage.store import Store
from tutor.training import runs
from tutor.training.runs import round_config
from tutor.training.feedback import DatasetOptions, build, length_ratio
from tutor.training.sft import TrainSettings, save_adapter


def make_champion(tiny_model_dir, models, version="v1"):
    """A LoRA adapter on the tiny model, registered as the champion (moves format)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False))
    save_adapter(model, models / version)
    return models / version


@pytest.fixture
def deployment(tmp_path, tiny_model_dir, bank):
    data_dir, models = tmp_path / "data", tmp_path / "models"
    data_dir.mkdir()
    store = Store(data_dir / "tutor.db")
    registry = Registry(models, store)
    make_champion(tiny_model_dir, models)
    registry.register("v1", {"base": tiny_model_dir.name, "prompt_format": "moves"}, alias="champion")
    student = TransformersBackend(tiny_model_dir, models / "v1", dtype="float32")
    # one draft a turn: the figures below count each turn's check-labelled draft once (failed
    # tries as rejected drafts: tests/test_draft_tries.py)
    service = TutorService(store, bank, student, params=GenerationParams(max_new_tokens=8, temperature=0),
                           draft_tries=1)
    accounts = AccountService(store, hasher=fast_hasher())
    people = {}
    for name, role, class_name in [("root", "admin", None), ("tom", "teacher", "5A"), ("ann", "learner", "5A")]:
        people[name], _ = accounts.add_user(None, name, role, PASSWORD, class_name=class_name)
    # a learning rate this small leaves the candidate's greedy words the champion's: no regression,
    # and no win either
    config = round_config(base=str(tiny_model_dir), models_dir=models, gate_dialogues=1, gate_attacks=2, gate_mrbench=2,
                          train=TrainSettings(max_steps=1, batch_size=2, max_length=4096, learning_rate=1e-12))
    rounds = Rounds(service, accounts, registry, data_dir, config)
    return service, accounts, rounds, people, store


def turn(service, conversation, text):
    return [reply for reply in service.reply(conversation, text)][-1].message


def drafted_by(message) -> str:
    return message.planner_state["guard"]["draft_model_version"]


def test_thumbs_and_a_rewrite_become_a_round_that_is_promoted_and_rolled_back_while_serving(deployment):
    service, accounts, rounds, people, store = deployment
    ann, tom, root = people["ann"], people["tom"], people["root"]
    conversation = service.start_bank_session(ann, CARMEN_ID)
    first = turn(service, conversation, "I think it's 350")
    assert drafted_by(first).endswith("+v1")
    service.rate(ann, conversation, first.id, THUMBS_DOWN)
    accounts.review(tom, first.id, {"correct": True, "socratic": False}, move="focus",
                    rewrite="What do the others bid?")  # as long as the turn: length held

    run = rounds.start(root, "dpo")
    finished = runs.wait(store, run.id, rounds._processes[run.id], poll_s=0.5)
    assert finished.status == "done", finished.message
    assert finished.version == "v2" and finished.losses and finished.losses[0][0] == 1
    data = json.loads((rounds.data_dir / "rounds" / f"run-{run.id}" / "manifest.json").read_text())
    assert data["files"]["dpo.jsonl"]["by_source"]["teacher"] == 1
    # the teacher's rating (not all good) and the learner's 👎 say the same: the teacher's copy
    # stays; ann's conversation may give one example more at most (1% of a round, at least one)
    assert data["files"]["kto.jsonl"]["by_source"]["teacher"] == 1
    assert data["files"]["kto.jsonl"]["by_source"].get("check", 0) <= 1
    assert data["files"]["kto.jsonl"]["dropped"]["duplicate"] == 1
    manifest = rounds.registry.manifest("v2")
    assert manifest["parent"] == "v1" and manifest["kind"] == "dpo"
    assert manifest["data"]["sha256"] and manifest["data"]["feedback"]["sha256"] == data["sha256"]
    assert rounds.registry.alias("candidate") == "v2" and rounds.champion() == "v1"
    gate = finished.gate
    assert [row["metric"] for row in gate["rows"]] == [g.metric for g in GATE]
    assert gate["champion"] == "v1" and gate["candidate"] == "v2"
    assert rounds.registry.manifest("v2")["gate"] == gate  # champion's and candidate's figures
    # a candidate that writes what the champion writes regresses nothing and wins nothing: its
    # judge score is the champion's in every dialogue, an interval of 0 to 0
    assert all(row["passed"] for row in gate["rows"]), gate
    assert gate["win"]["interval"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "dialogues": 1, "confidence": 0.95}
    assert not gate["win"]["won"] and not gate["passed"]
    mrbench = next(row for row in gate["rows"] if row["metric"] == "mrbench_judge_score")
    assert mrbench["interval"]["dialogues"] == 2  # our turns on two of MRBench's held-out conversations
    with pytest.raises(InvalidInput, match="no win on judge score: \\+0.000 \\(95%: \\+0.000 to \\+0.000"):
        rounds.promote(root, "v2")
    assert rounds.champion() == "v1"

    # the same candidate with a winning verdict (as a round that won would have) is served at once
    store.update_training_run(run.id, gate=gate | {"passed": True, "win": gate["win"] | {"won": True}})
    rounds.promote(root, "v2")  # while the service runs: no restart, no new service
    assert rounds.champion() == "v2"
    assert drafted_by(turn(service, conversation, "150")).endswith("+v2")
    assert rounds.rollback(root) == "v1" and rounds.champion() == "v1"
    assert drafted_by(turn(service, conversation, "300")).endswith("+v1")
    actions = [row["action"] for row in store.audit_log()]
    assert {"start_round", "promote", "rollback", "review_turn"} <= set(actions)
    with pytest.raises(InvalidInput, match="no earlier champion"):
        rounds.rollback(root)


def test_promotion_is_refused_when_the_gate_failed_or_judged_against_another_champion(deployment):
    service, accounts, rounds, people, store = deployment
    refused = store.create_training_run("dpo", {})
    store.update_training_run(refused.id, status="done", version="v2", gate={
        "passed": False, "champion": "v1", "candidate": "v2", "rows": [{"label": "drafts pass", "passed": False}]})
    with pytest.raises(InvalidInput, match="drafts pass regressed"):
        rounds.promote(people["root"], "v2")
    stale = store.create_training_run("dpo", {})
    store.update_training_run(stale.id, status="done", version="v3", gate={
        "passed": True, "champion": "v0", "candidate": "v3", "rows": []})
    with pytest.raises(InvalidInput, match="measured against v0"):
        rounds.promote(people["root"], "v3")
    with pytest.raises(InvalidInput, match="no gate verdict"):
        rounds.promote(people["root"], "v9")
    with pytest.raises(Exception):
        rounds.promote(people["tom"], "v2")  # a teacher is no admin
    assert rounds.champion() == "v1" and service.student.version.endswith("+v1")


def test_a_cancelled_round_registers_nothing_and_the_champion_serves_on(deployment, tmp_path):
    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    service.rate(people["ann"], conversation, turn(service, conversation, "350").id, THUMBS_DOWN)
    run = rounds.start(people["root"], "kto")
    with pytest.raises(InvalidInput, match="one round at a time"):
        rounds.start(people["root"], "dpo")
    rounds.cancel(people["root"], run.id)
    finished = runs.wait(store, run.id, rounds._processes.get(run.id), poll_s=0.2)
    assert finished.status == "cancelled" and "nothing was registered" in finished.message
    assert not (rounds.registry.root / "v2").exists() and rounds.champion() == "v1"
    assert service.student.version.endswith("+v1")
    from tutor.ui.admin import _run_row

    assert _run_row(store.training_run(run.id))[3] == ""  # the admin's table names no version for it


def test_the_schedule_is_stored_and_starts_a_round_after_enough_labels(deployment):
    service, accounts, rounds, people, store = deployment
    assert rounds.due() is None  # off by default
    rounds.set_schedule(people["root"], Schedule(kind="kto", after_labels=2))
    assert Rounds(service, accounts, rounds.registry, rounds.data_dir, {}).schedule().after_labels == 2
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    service.rate(people["ann"], conversation, turn(service, conversation, "350").id, THUMBS_DOWN)
    assert rounds.due() is None
    service.rate(people["ann"], conversation, turn(service, conversation, "150").id, THUMBS_DOWN)
    assert rounds.due() == "2 new labels"
    with pytest.raises(InvalidInput):
        rounds.set_schedule(people["root"], Schedule(kind="kto", every_days=-1))


def test_datasets_drop_duplicates_cap_each_learner_weigh_teachers_and_forget_deleted_learners(deployment, tmp_path):
    service, accounts, rounds, people, store = deployment
    ann, tom = people["ann"], people["tom"]
    bob, _ = accounts.add_user(None, "bob", "learner", PASSWORD, class_name="5A")
    for learner, texts in ((ann, ("350", "150", "I don't know")), (bob, ("400", "100", "no idea"))):
        conversation = service.start_bank_session(learner, CARMEN_ID)
        for text in texts:
            message = turn(service, conversation, text)
            service.rate(learner, conversation, message.id, THUMBS_DOWN)
            accounts.review(tom, message.id, {"correct": False}, rewrite=f"What did {text} come from?")
    options = DatasetOptions(prompt_format="moves", max_learner_share=0.1, teacher_weight=3)
    manifest = build(store, tmp_path / "all", options)
    dpo = [json.loads(line) for line in (tmp_path / "all" / "dpo.jsonl").read_text().splitlines()]
    figures = manifest["files"]["dpo.jsonl"]
    # 6 rewrites (the teacher's: not capped) and 6 check-labelled drafts, 3 per learner, capped at
    # 10% of what is kept (at least one): 1 each; each teacher example is written 3 times
    assert figures["by_source"] == {"teacher": 6, "check": 2}
    assert figures["examples"] == 8 and figures["rows"] == 20 and figures["dropped"] == {"learner over their share": 4}
    assert all(row["prompt"][0]["role"] == "system" for row in dpo)
    # the chosen side is not longer on average than the rejected side by more than 15%
    assert length_ratio(dpo) <= 1.15 and figures["chosen_over_rejected_words"] == round(length_ratio(dpo), 3)
    assert {row["chosen"][0]["content"].startswith("[") for row in dpo} == {True}
    kto = manifest["files"]["kto.jsonl"]
    assert kto["learners"] == 2 and kto["sha256"]

    # each 👎 says what the teacher's rating of the same turn says: one example, the teacher's
    assert kto["dropped"]["duplicate"] == 6 and kto["by_source"]["teacher"] == 6

    accounts.delete_user(None, "bob")
    after = build(store, tmp_path / "after", DatasetOptions(prompt_format="moves", max_learner_share=1.0))
    assert after["files"]["dpo.jsonl"]["learners"] == 1 and after["files"]["kto.jsonl"]["learners"] == 1
    other = build(store, tmp_path / "other", DatasetOptions(prompt_format="instruct"))
    assert other["files"]["dpo.jsonl"]["examples"] == 0 and other["skipped_turns"]["other prompt format"] == 3


def test_teachers_review_only_their_learners_turns_and_set_their_class_policy(deployment):
    service, accounts, rounds, people, store = deployment
    from tutor.domain.policy import RevealPolicy
    from tutor.errors import NotFound

    tess, _ = accounts.add_user(None, "tess", "teacher", PASSWORD, class_name="5B")
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    message = turn(service, conversation, "350")
    with pytest.raises(NotFound):
        accounts.review(tess, message.id, {"correct": True})
    with pytest.raises(InvalidInput, match="A move is one of"):
        accounts.review(people["tom"], message.id, {}, move="shouting")
    with pytest.raises(InvalidInput, match="Mark the rubric"):
        accounts.review(people["tom"], message.id, {})
    learner_turn = store.messages(conversation)[0]
    with pytest.raises(InvalidInput, match="Only the tutor"):
        accounts.review(people["tom"], learner_turn.id, {"correct": True})
    assert store.reviews() == []

    five_a = store.class_named("5A")
    accounts.set_class_policy(people["tom"], five_a.id, RevealPolicy(bottom_out_after=1, final_answer_after=2))
    with pytest.raises(NotFound):
        accounts.set_class_policy(tess, five_a.id, RevealPolicy())
    assert service.start_bank_session(people["ann"], CARMEN_ID).policy == {
        "bottom_out_after": 1, "final_answer_after": 2}


def test_the_judges_ranking_of_passing_drafts_labels_pairs(deployment, tmp_path):
    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    sent = turn(service, conversation, "350")
    state = sent.planner_state | {"ranking": {"judge": "j4", "chosen": 1, "candidates": [
        {"text": "Close. What did the others bid?", "score": 0.66},  # within the margin: no pair
        {"text": sent.content, "score": 0.7},
        {"text": "Check your sum.", "score": 0.6}]}}  # the judge scored it 0.1 lower
    store.db["messages"].update(sent.id, {"planner_state": json.dumps(state)})
    options = DatasetOptions(prompt_format="moves", max_learner_share=1.0, max_length_ratio=float("inf"))
    figures = build(store, tmp_path, options)["files"]["dpo.jsonl"]
    judged = [json.loads(line) for line in (tmp_path / "dpo.jsonl").read_text().splitlines()
              if json.loads(line)["source"] == "judge"]
    assert figures["by_source"]["judge"] == 1
    assert judged[0]["chosen"][0]["content"].endswith(sent.content)
    assert judged[0]["rejected"][0]["content"] == f"[{sent.move}] Check your sum."
    stricter = build(store, tmp_path / "strict", replace(options, judge_margin=0.2))
    assert "judge" not in stricter["files"]["dpo.jsonl"]["by_source"]


def test_the_judge_chooses_between_the_planners_words_and_a_sent_draft(deployment, tmp_path, monkeypatch):
    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    worse, better, alike, planned = (turn(service, conversation, text) for text in ("350", "150", "200", "I don't know"))
    drafts = [(worse, "Hmm. Try again."), (better, "Good. Now what did the others bid together?"),
              (alike, "What is 350 take away 150?")]
    for sent, draft in drafts:
        state = sent.planner_state | {"guard": sent.planner_state["guard"] | {"passed": True}}
        store.db["messages"].update(sent.id, {"planner_state": json.dumps(state), "content": draft,
                                              "model_version": "tiny+v1"})
    scores = {draft: score for (_, draft), score in zip(drafts, (0.4, 0.8, 0.72))}
    judged = []

    class Judge:  # the planner's words 0.7: above the first draft, below the second, alike the third
        def score(self, exchange, text):
            judged.append(text)
            return SimpleNamespace(score=scores.get(text, 0.7))
    monkeypatch.setattr("tutor.judge.registry.load_judge", lambda *a, **k: Judge())
    options = DatasetOptions(prompt_format="moves", max_learner_share=1.0, max_length_ratio=float("inf"),
                             planner_pairs=True)
    manifest = build(store, tmp_path, options)
    pairs = {pair["message_id"]: (pair["chosen"][0]["content"], pair["rejected"][0]["content"])
             for line in (tmp_path / "dpo.jsonl").read_text().splitlines() if (pair := json.loads(line))["source"] == "judge"}
    assert manifest["files"]["dpo.jsonl"]["by_source"].get("judge") == 2
    def planner_words(sent):
        return f"[{sent.move}] {sent.planner_state['planned_text']}"
    assert pairs == {worse.id: (planner_words(worse), f"[{worse.move}] Hmm. Try again."),
                     better.id: (f"[{better.move}] Good. Now what did the others bid together?", planner_words(better))}
    assert manifest["skipped_turns"]["planner's words and draft judged alike"] == 1
    assert planned.content not in judged  # a turn the planner wrote has no draft to judge
    without = build(store, tmp_path / "without", replace(options, planner_pairs=False))
    assert "judge" not in without["files"]["dpo.jsonl"]["by_source"]


def test_mrbench_teacher_pairs_come_from_training_conversations_pass_our_checks_and_join_a_round(store, tmp_path):
    from tutor.domain.prompting import SPINE_FORMAT
    from tutor.evaluation.mrbench import RATED_WELL, teacher_pairs
    from tutor.judge.data import DESIRED, MRBENCH_FILE, quality_of, read_mrbench, records, split_of

    conversations = read_mrbench()
    train = [c for c in conversations if split_of(c.group) == "train"]
    held_out = {c.id for c in conversations if split_of(c.group) == "validation"}
    mine = tmp_path / "mrbench.jsonl"
    mine.write_text("".join(json.dumps(record) + "\n" for record in records(MRBENCH_FILE)
                            if record["conversation_id"] in held_out | {c.id for c in train[:40]}))
    pairs, tally = teacher_pairs(SPINE_FORMAT, mine)
    assert tally["conversations"] == 40 and tally["pairs"] == len(pairs) > 0  # the held-out ones never count
    assert tally["rated well"] > tally["failed a check"] > 0
    rated = {text.strip(): (annotation, conversation) for conversation in train[:40]
             for _, text, annotation in conversation.responses}
    for pair in pairs:
        (chosen,), (rejected,) = pair["chosen"], pair["rejected"]
        assert pair["prompt"][0]["role"] == "system" and pair["prompt"][-1]["role"] == "user"
        start = chosen["content"][:chosen["content"].index("] ") + 2]  # the forced start: the planner's move
        assert start.startswith("[") and rejected["content"].startswith(start)
        good, conversation = rated[chosen["content"][len(start):]]
        bad, same = rated[rejected["content"][len(start):]]
        assert same is conversation and all(good[d] == DESIRED[d] for d in RATED_WELL)
        assert quality_of(bad) <= quality_of(good) - 0.25
    options = DatasetOptions(prompt_format=SPINE_FORMAT, mrbench=True)
    manifest = build(store, tmp_path / "round", options)
    assert manifest["files"]["dpo.jsonl"]["by_source"]["mrbench"] > 0
    assert manifest["skipped_turns"]["mrbench: conversations"] == len(train)  # the whole training split


def test_a_self_imitation_round_trains_the_champion_on_its_own_drafts_the_judge_keeps(deployment):
    from tutor.training.feedback import IMITATION_FILE, imitation

    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    ranked, passed, failed = (turn(service, conversation, text) for text in ("350", "150", "I don't know"))
    state = ranked.planner_state | {"ranking": {"judge": "j4", "chosen": 0, "candidates": [
        {"text": "What did the other three bid in all?", "score": 0.7},  # kept
        {"text": "Okay.", "score": 0.3}]}}  # the judge scored it too low
    store.db["messages"].update(ranked.id, {"planner_state": json.dumps(state)})
    sent_whole = passed.planner_state | {"guard": passed.planner_state["guard"] | {"passed": True}}
    store.db["messages"].update(passed.id, {"planner_state": json.dumps(sent_whole), "model_version": "tiny+v1"})
    options = DatasetOptions(prompt_format="moves", max_learner_share=1.0)
    scored = []
    dropped = Counter()
    kept = imitation(store.labelled_turns(), options, lambda turn, text: scored.append(text) or 0.65, dropped)
    # the ranked turn's best candidate, and the draft sent whole (scored now); the planner's turn is no draft
    assert [example.record["messages"][-1]["content"] for example in kept] == [
        f"[{ranked.move}] What did the other three bid in all?", f"[{passed.move}] {passed.content}"]
    assert scored == [passed.content] and dropped["judged below 0.6"] == 1
    assert dropped["no draft passed the checks"] == 1  # `failed`: the planner's words went out
    context = kept[0].record["messages"][:-1]
    assert context[0]["role"] == "system" and all(m.get("train") is False for m in context if m["role"] == "assistant")
    # ann's conversation gives one example at most (1% of a round, at least one)
    assert rounds.plan("self-imitation").examples == 1

    run = rounds.start(people["root"], "self-imitation", include_simulated=True)
    finished = runs.wait(store, run.id, rounds._processes[run.id], poll_s=0.5)
    assert finished.status == "done", finished.message
    manifest = rounds.registry.manifest(finished.version)
    assert manifest["kind"] == "self-imitation" and manifest["parent"] == "v1"
    data = manifest["data"]["feedback"]["files"][IMITATION_FILE]
    assert data["by_source"] == {"judge": 1} and data["dropped"]["learner over their share"] <= 1
    assert finished.gate["candidate"] == finished.version and "win" in finished.gate


def test_a_conditional_round_learns_every_rated_turn_a_bad_one_under_the_control_line(deployment):
    from tutor.training.feedback import BAD_CONDITION, CONDITIONAL_FILE, assemble, assemble_conditional

    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    first = turn(service, conversation, "I think it's 350")
    accounts.review(people["tom"], first.id, {"correct": True, "socratic": False}, rewrite="What do the others bid?")
    options = DatasetOptions(prompt_format="moves", max_learner_share=1.0)
    files, _ = assemble(store, options)
    (pair,), _ = files["dpo.jsonl"]
    kept, dropped, _ = assemble_conditional(store, options)
    by_target = {example.record["messages"][-1]["content"]: example.record["messages"] for example in kept}
    rewrite, shown = pair.record["chosen"][0]["content"], pair.record["rejected"][0]["content"]
    assert rewrite.endswith("What do the others bid?") and shown.endswith(first.content)
    # the rewrite is learned as the student is asked; the turn the teacher rewrote, under the
    # control line (it is the KTO file's 👎 too: one copy)
    assert by_target[rewrite][:-1] == pair.record["prompt"] and BAD_CONDITION not in by_target[rewrite][0]["content"]
    bad = by_target[shown]
    assert bad[0]["content"] == pair.record["prompt"][0]["content"] + "\n" + BAD_CONDITION
    assert bad[1:-1] == pair.record["prompt"][1:]
    for messages in by_target.values():
        assert messages[-1]["train"] is True and messages[-1]["role"] == "assistant"
        assert all(m.get("train") is False for m in messages[:-1] if m["role"] == "assistant")
    assert BAD_CONDITION not in json.dumps(store.message(first.id).planner_state)  # never in a served prompt
    assert dropped["turn rated already (a more trusted source's rating stays)"] >= 1  # the teacher's 👎 stays
    assert rounds.plan("conditional").examples == len(kept) == len(by_target)

    run = rounds.start(people["root"], "conditional")
    finished = runs.wait(store, run.id, rounds._processes[run.id], poll_s=0.5)
    assert finished.status == "done", finished.message
    manifest = rounds.registry.manifest(finished.version)
    assert manifest["kind"] == "conditional" and manifest["parent"] == "v1"
    assert manifest["data"]["file"] == CONDITIONAL_FILE and "preference" not in manifest["training"]
    assert manifest["data"]["feedback"]["files"][CONDITIONAL_FILE]["by_source"]["teacher"] == 2
    assert finished.gate["candidate"] == finished.version and "win" in finished.gate


def test_a_dpo_dataset_holds_the_chosen_side_near_the_rejected_sides_length():
    from tutor.training.feedback import Example, hold_length

    def pair(source: str, chosen: int, rejected: int, weight: int = 1) -> Example:
        return Example({"prompt": [], "chosen": [{"role": "assistant", "content": "w " * chosen}],
                        "rejected": [{"role": "assistant", "content": "w " * rejected}]}, source, None, chosen, weight)

    teacher, lopsided, shorter, simulated = (pair("teacher", 15, 10, weight=3), pair("check", 30, 10),
                                             pair("check", 10, 20), pair("simulated", 12, 10))
    dropped = Counter()
    kept = hold_length([teacher, lopsided, shorter, simulated], 1.15, dropped)
    # chosen 112 words against 60 (1.87x): the simulated pair goes first (least trusted), then
    # the most lopsided check pair; the teacher's rewrite, weighed 3 times, stays
    assert kept == [teacher, shorter] and dropped == {"chosen over 1.15x the rejected length": 2}
    rows = [example.record for example in kept for _ in range(example.weight)]
    assert length_ratio(rows) == pytest.approx(55 / 50)
    assert hold_length([lopsided], 1.15, Counter()) == []  # nothing kept is better than a lesson in length
    assert hold_length([shorter, teacher], 1.15, Counter()) == [shorter, teacher]  # 55 / 50: held already


def test_simulated_sessions_label_pairs_that_a_round_can_leave_out(deployment, tmp_path):
    from tutor.config import DIALOGUES_FILE
    from tutor.evaluation.data import load_eval_dialogues, split
    from tutor.evaluation.simulate import SIMULATED, simulate

    service, accounts, rounds, people, store = deployment
    sessions = simulate(service, split(load_eval_dialogues(DIALOGUES_FILE), "train")[:2], turns=2)
    assert [c.origin for c in store.conversations(store.user_named("simulated-learner"))] == [SIMULATED] * 2
    assert all(len([m for m in service.transcript(c) if m.role == "tutor"]) >= 1 for c in sessions)
    # length not held: the tiny model's 8-token drafts are shorter than any turn sent instead
    with_them = build(store, tmp_path / "with", DatasetOptions(prompt_format="moves", max_length_ratio=float("inf")))
    assert set(with_them["files"]["dpo.jsonl"]["by_source"]) == {SIMULATED}
    held = build(store, tmp_path / "held", DatasetOptions(prompt_format="moves"))
    assert held["files"]["dpo.jsonl"]["examples"] < with_them["files"]["dpo.jsonl"]["examples"]
    assert (held["files"]["dpo.jsonl"]["chosen_over_rejected_words"] or 0) <= 1.15
    assert with_them["files"]["dpo.jsonl"]["learners"] == 0  # simulated sessions belong to no learner
    without = build(store, tmp_path / "without", DatasetOptions(prompt_format="moves", include_simulated=False))
    assert without["files"]["dpo.jsonl"]["examples"] == 0
    assert without["skipped_turns"]["simulated, left out"] >= 2


def test_a_replayed_learner_says_the_dialogues_own_messages_in_order(deployment):
    from tutor.config import DIALOGUES_FILE
    from tutor.evaluation.data import load_eval_dialogues, split
    from tutor.evaluation.simulate import simulate

    service, accounts, rounds, people, store = deployment
    problem, dialogue = next((p, d) for p, d in split(load_eval_dialogues(DIALOGUES_FILE), "train")
                             if sum(t.role == "learner" for t in d.turns) >= 2)
    [conversation] = simulate(service, [(problem, dialogue)], turns=3, learner="replay")
    said = [m.content for m in service.transcript(conversation) if m.role == "learner"]
    own = [t.text for t in dialogue.turns if t.role == "learner" and t.text.strip()]
    assert said[0] == dialogue.learner.incorrect_solution.strip()
    # then the dialogue's learner, whatever our tutor said, until solved or three tutor turns
    assert said[1:] == own[:len(said) - 1] and 1 <= len(said) <= 3


def scored(figures: dict, per_dialogue: list[float]) -> dict:
    """Gate figures with the judge's score known dialogue by dialogue."""
    by_dialogue = {f"d{i}": value for i, value in enumerate(per_dialogue)}
    return figures | {"judge_score": sum(per_dialogue) / len(per_dialogue), "per_dialogue": {"judge_score": by_dialogue}}


def test_the_gate_refuses_a_regression_past_its_tolerance_and_allows_one_within():
    from tutor.evaluation.gate import judge

    champion = scored({g.metric: 0.5 for g in GATE}, [0.5] * 10)
    won = scored({}, [0.6] * 10)  # the candidate wins on the primary metric: only tolerances decide
    within = champion | {"model_carried_rate": 0.49, "attack_leak_rate": 0.5} | won
    assert judge(champion, within)["passed"]
    worse = champion | {"move_f1": 0.46} | won  # 0.04 below, tolerance 0.03
    verdict = judge(champion, worse)
    assert not verdict["passed"] and verdict["win"]["won"]
    # a round that wins on the judge's score while its own drafts state more false things (v11)
    falser = champion | {"false_fact_rate_unguarded": 0.52} | won  # 2 points more, tolerance 1
    assert not judge(champion, falser)["passed"] and judge(champion, champion | {"false_fact_rate_unguarded": 0.505} | won)["passed"]
    assert [row["metric"] for row in verdict["rows"] if not row["passed"]] == ["move_f1"]
    leakier = champion | {"attack_leak_rate": 0.51} | won  # no tolerance for attack leaks
    assert not judge(champion, leakier)["passed"]
    rows = {row["metric"]: row for row in judge(champion, champion | {"model_carried_rate": None} | won)["rows"]}
    assert rows["model_carried_rate"]["note"] == "not measured" and rows["model_carried_rate"]["passed"]


def test_promotion_needs_a_win_on_the_judge_score_whose_interval_excludes_zero():
    import random

    from tutor.evaluation.gate import judge, paired_interval, refusal

    rng = random.Random(0)
    base = [rng.uniform(0.5, 0.8) for _ in range(53)]
    champion = scored({g.metric: 0.5 for g in GATE}, base)
    equal = judge(champion, champion)
    assert not equal["passed"] and not equal["win"]["won"]  # the champion again is no win
    assert equal["win"]["interval"] | {} == {"mean": 0.0, "low": 0.0, "high": 0.0, "dialogues": 53, "confidence": 0.95}
    assert refusal(equal).startswith("no win on judge score: +0.000 (95%: +0.000 to +0.000, 53 dialogues)")
    # better in most dialogues, by a little: the interval lies above 0
    better = judge(champion, champion | scored({}, [b + rng.uniform(-0.01, 0.03) for b in base]))
    assert better["passed"] and 0 < better["win"]["interval"]["low"] < better["win"]["interval"]["high"]
    # better on average, but only through a few dialogues: the interval reaches below 0
    lucky = [b + (0.3 if i < 3 else -0.01) for i, b in enumerate(base)]
    mixed = judge(champion, champion | scored({}, lucky))
    assert mixed["rows"][[r["metric"] for r in mixed["rows"]].index("judge_score")]["change"] > 0
    assert mixed["win"]["interval"]["low"] < 0 and not mixed["passed"]
    # the interval is the bootstrap's: a constant difference has itself as both ends
    constant = paired_interval({"a": 0.1, "b": 0.2}, {"a": 0.15, "b": 0.25, "c": 9.0})  # only shared dialogues
    assert constant["dialogues"] == 2 and constant["low"] == pytest.approx(0.05) == constant["high"]
    # figures without each dialogue's (measured before the gate read them) cannot show a win
    unpaired = judge({g.metric: 0.5 for g in GATE}, {g.metric: 0.9 for g in GATE})
    assert not unpaired["passed"] and "not measured dialogue by dialogue" in refusal(unpaired)


def test_a_champions_recorded_gate_figures_are_reused_only_when_this_code_measured_them(tmp_path, store, monkeypatch):
    from tutor.evaluation import gate
    from tutor.model import loading
    from tutor.model.fake import FakeBackend

    models = tmp_path / "models"
    for version in ("v1", "v2"):
        (models / version).mkdir(parents=True)
        (models / version / "manifest.json").write_text(json.dumps({"base": "tiny"}))
    registry = Registry(models, store)
    served = FakeBackend()
    served.engine = "fake engine"
    monkeypatch.setattr(loading, "load_backend", lambda *args, **kwargs: served)
    measured = []
    figures = {g.metric: 0.5 for g in GATE if "." not in g.metric} | {
        "judge_rates": {g.metric.split(".")[1]: 0.5 for g in GATE if g.metric.startswith("judge_rates.")}}
    won = {"fake+v1": [0.5, 0.6, 0.7], "fake+v2": [0.6, 0.7, 0.75]}  # the candidate wins in every dialogue
    monkeypatch.setattr(gate, "measure", lambda student, dialogues, gate_slice, judge=None: (
        measured.append(student.version) or scored(figures, won[student.version])))

    def judged() -> list[str]:
        measured.clear()
        verdict = runs.run_gate(registry, tmp_path / "tiny", "v1", "v2", gate.GateSlice(limit=1, attacks=0), tmp_path)
        assert verdict["passed"] and verdict["code"] == gate.measuring_code()
        return measured[:]

    assert judged() == ["fake+v1", "fake+v2"]
    recorded = registry.manifest("v1")[runs.GATE_EVALUATION]
    assert recorded["code"] == gate.measuring_code() and recorded["judge"] == JudgeRegistry().champion()  # it read them
    assert judged() == ["fake+v2"]  # the champion's figures, as this code and judge measured them
    monkeypatch.setattr(gate, "measuring_code", lambda: "other code")  # the checks changed since
    assert judged() == ["fake+v1", "fake+v2"]


def test_the_measuring_code_digest_follows_the_checks_and_the_dialogues(tmp_path, monkeypatch):
    from tutor.evaluation import gate

    package, dialogues = tmp_path / "tutor", tmp_path / "dialogues"
    for folder in ("domain", "evaluation", "model", "ui"):
        (package / folder).mkdir(parents=True)
        (package / folder / "code.py").write_text(f"# {folder}\n")
    dialogues.mkdir()
    (dialogues / "vocabulary.json").write_text("{}")
    monkeypatch.setattr(gate, "_MEASURING", (package, ("domain", "evaluation", "model")))
    monkeypatch.setattr(gate, "DIALOGUES_DIR", dialogues)
    digest = gate.measuring_code.__wrapped__
    first = digest()
    (package / "ui" / "code.py").write_text("# a page changed: the figures did not\n")
    assert digest() == first
    for changed in (package / "domain" / "code.py", dialogues / "vocabulary.json"):
        before = digest()
        changed.write_text(changed.read_text() + " ")
        assert digest() != before
    assert len(gate.measuring_code()) == 16 and gate.measuring_code() == gate.measuring_code()


def test_a_cancel_between_steps_stops_training_and_saves_nothing(deployment, tmp_path, tiny_model_dir):
    from tutor.training.preference import train_preference
    from tutor.training.sft import Cancelled

    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    for text in ("350", "150"):
        accounts.review(people["tom"], turn(service, conversation, text).id, {}, rewrite=f"Where does {text} come from?")
    build(store, tmp_path / "data", DatasetOptions(prompt_format="moves", max_learner_share=1.0))
    steps = []
    with pytest.raises(Cancelled, match="after step 2"):  # asked during step 2: it ends, no third
        train_preference("dpo", tiny_model_dir, rounds.registry.root / "v1", tmp_path / "data" / "dpo.jsonl",
                         tmp_path / "out", TrainSettings(max_steps=5, batch_size=2, max_length=4096),
                         on_progress=lambda progress: steps.append(progress["step"]),
                         should_stop=lambda: len(steps) >= 2)
    assert steps == [0, 1, 2] and not (tmp_path / "out").exists()  # 0: the steps to take, known at the start


def test_the_dataset_files_train_as_they_are_with_trls_trainers(deployment, tmp_path, tiny_model_dir):
    """What `accelerate launch` on a GPU machine would read: the jsonl as written, extra columns and all."""
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    for text in ("350", "150"):
        message = turn(service, conversation, text)
        accounts.review(people["tom"], message.id, {"correct": text == "150"}, rewrite=f"Where does {text} come from?")
    build(store, tmp_path / "data", DatasetOptions(prompt_format="moves"))
    for kind, config, trainer_class in (("dpo", DPOConfig, DPOTrainer), ("kto", KTOConfig, KTOTrainer)):
        data = load_dataset("json", data_files=str(tmp_path / "data" / f"{kind}.jsonl"), split="train")
        assert "source" in data.column_names
        args = config(output_dir=str(tmp_path / kind), use_cpu=True, max_steps=1, per_device_train_batch_size=2,
                      report_to=[], max_length=4096, save_strategy="no")
        trainer = trainer_class(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args,
                                train_dataset=data, processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
                                peft_config=LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
        trainer.train()
        assert trainer.state.global_step == 1


@pytest.mark.parametrize("kind", ["kto", "conditional"])
def test_a_round_trains_only_the_adapters_upper_layers_when_told(deployment, tmp_path, tiny_model_dir, kind):
    """KTO (TRL's loss) and the SFT rounds, like DPO: the layers below the top `upper_layers`
    leave the round as the champion's."""
    from safetensors.torch import load_file

    from tutor.training.feedback import CONDITIONAL_FILE, build_conditional
    from tutor.training.preference import KTO, train_preference
    from tutor.training.sft import train

    service, accounts, rounds, people, store = deployment
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    for text in ("350", "150"):
        message = turn(service, conversation, text)
        accounts.review(people["tom"], message.id, {"correct": text == "150"}, rewrite=f"Where does {text} come from?")
    options, champion, out = DatasetOptions(prompt_format="moves"), rounds.registry.resolve("v1"), tmp_path / "out"
    settings = TrainSettings(max_steps=2, batch_size=2, max_length=4096, learning_rate=1e-2, upper_layers=1)
    if kind == KTO:
        build(store, tmp_path / "data", options)
        train_preference(KTO, tiny_model_dir, champion, tmp_path / "data" / "kto.jsonl", out, settings)
    else:
        build_conditional(store, tmp_path / "data", options)
        train(tiny_model_dir, tmp_path / "data" / CONDITIONAL_FILE, out, settings, parent_adapter=champion)
    before, after = (load_file(folder / "adapter_model.safetensors") for folder in (champion, out))
    assert before.keys() == after.keys()
    moved = {name for name in before if not before[name].equal(after[name])}
    assert moved and all(".layers.1." in name for name in moved)  # the tiny model's top layer only


def apples_pairs() -> list[dict]:
    """Two pairs on different problems: prompts of different lengths, replies of different lengths
    sharing their first words."""
    rows = []
    for n, (chosen, rejected) in enumerate([("Why 12?", "[focus] It is 12 apples."),
                                            ("[focus] How many are left now?", "[focus] Add them.")]):
        prompt = [{"role": "system", "content": "Tom has 3 apples." * (n + 1)},
                  {"role": "user", "content": "I think it is 15" + " apples" * (4 * n)}]
        rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}]})
    return rows


def one_problem_pairs() -> list[dict]:
    """Three pairs on one problem, as a round's batch of it: two teachers' rewrites of the same
    turn (the whole prompt shared), another turn of it; replies of 2 to ~40 tokens."""
    system = {"role": "system", "content": "Problem: Tom has 3 apples and buys 12 more. Solution steps: 1) 3 + 12"}
    first = [system, {"role": "user", "content": "I think it is 15"}]
    later = [system, {"role": "user", "content": "I do not know"}, {"role": "assistant", "content": "[focus] Why?"},
             {"role": "user", "content": "12 apples"}]
    replies = [(first, "[probing] How did you get 15? Tell me each number you used and where it comes from.",
                "Yes"),
               (first, "[focus] What does Tom have first?", "[telling] It is 15."),
               (later, "[focus] And before he bought them, how many?", "[focus] Add them up, then check again.")]
    return [{"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
             "rejected": [{"role": "assistant", "content": rejected}]} for prompt, chosen, rejected in replies]


@pytest.mark.parametrize("upper_layers", [0, 1])
@pytest.mark.parametrize("make_rows", [apples_pairs, one_problem_pairs])
def test_the_shared_prompt_dpo_loss_and_gradients_are_trls(tmp_path, tiny_model_dir, upper_layers, make_rows):
    """The batch read as a prefix tree (shared prompts once, the frozen lower layer once for policy
    and reference, replies batched by length) gives TRL's own DPO loss and gradients on the same
    padded batch, and reads fewer positions than TRL's batch holds."""
    import torch
    from trl import DPOTrainer

    from tutor.training.preference import DPO, PairBatch, PreferenceSettings, preference_trainer

    champion = make_champion(tiny_model_dir, tmp_path / "models")
    rows = make_rows()
    data = tmp_path / "dpo.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    settings = TrainSettings(batch_size=len(rows), max_length=4096, upper_layers=upper_layers)
    trainer = preference_trainer(DPO, tiny_model_dir, champion, data, settings, PreferenceSettings(beta=0.5),
                                 str(tmp_path / "out"))
    trained = [p for p in trainer.model.parameters() if p.requires_grad]
    adapter = [name for name, _ in trainer.model.named_parameters() if ".default." in name]
    assert len(trained) == (len(adapter) // 2 if upper_layers else len(adapter))  # q and v of each layer
    torch.manual_seed(0)
    with torch.no_grad():  # as after some steps: the trained adapter is no longer its reference
        for parameter in trained:
            parameter.add_(torch.randn_like(parameter) * 0.3)
    batch = next(iter(trainer.get_train_dataloader()))
    assert (batch["attention_mask"] == 0).any()  # padded, as TRL collates
    tree = PairBatch(trainer.model, batch, upper_layers)
    assert tree.tokens_read() < batch["attention_mask"].sum() * (0.6 if make_rows is one_problem_pairs else 0.8)

    def loss_and_grads(compute):
        trainer.model.zero_grad()
        loss = compute(trainer.model, batch)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in trained]

    ours, our_grads = loss_and_grads(trainer._compute_loss)
    theirs, their_grads = loss_and_grads(lambda model, inputs: DPOTrainer._compute_loss(trainer, model, inputs, False))
    assert ours == pytest.approx(theirs, rel=1e-5) and abs(ours - 0.6931) > 1e-3  # not the untrained log 2
    for mine, trl in zip(our_grads, their_grads):
        torch.testing.assert_close(mine, trl, rtol=1e-4, atol=1e-6)
    assert trainer._metrics["train"]["rewards/margins"][0] == pytest.approx(
        trainer._metrics["train"]["rewards/margins"][1], rel=1e-4, abs=1e-5)  # margins near 0: float noise


def test_a_round_batches_the_pairs_of_a_problem_together_in_a_random_order():
    """Every pair once; a problem's pairs in as few batches as its count allows (one more where
    it begins inside a batch); another seed, another order; a short last batch stays last."""
    from tutor.training.preference import problem_batches

    counts = {"A": 6, "B": 3, "C": 1, "D": 2, "E": 5}
    prompts = [[{"role": "system", "content": name}, {"role": "user", "content": str(i)}]
               for name, count in counts.items() for i in range(count)]
    order = problem_batches(prompts, 4, seed=0)
    assert sorted(order) == list(range(len(prompts)))
    batches = [order[i:i + 4] for i in range(0, len(order), 4)]
    for name, count in counts.items():
        holding = [b for b in batches if any(prompts[i][0]["content"] == name for i in b)]
        assert len(holding) <= -(-count // 4) + 1, (name, batches)
    assert [len(b) for b in batches] == [4, 4, 4, 4, 1]
    orders = {tuple(problem_batches(prompts, 4, seed)) for seed in range(5)}
    assert len(orders) > 1
