"""A learner may stop a reply being written, or ask for the last one said another way (a fresh
draft of the same planned turn; the first wording becomes a rejected side for the loop)."""

import json
import threading
import time

import pytest

from tests.conftest import CARMEN_ID
from tutor.domain.prompting import MOVES_FORMAT
from tutor.domain.tutoring import SAID_BEFORE
from tutor.errors import InvalidInput
from tutor.model.fake import FakeBackend
from tutor.model.planner import PlannerStudent
from tutor.service import THUMBS_DOWN, TutorService
from tutor.training.feedback import DatasetOptions, build

STUCK = "I don't know."
LOOK = "Let us look at the other people's bids."
ASK = "Which bids did the 3 other people make?"


def another_way_service(store, bank, *wordings: str) -> tuple[TutorService, FakeBackend]:
    student = FakeBackend([f"focus] {words}" for words in wordings], prompt_format=MOVES_FORMAT)
    return TutorService(store, bank, student), student


def test_another_way_is_a_sampled_draft_of_the_same_turn_in_other_words(store, bank, monkeypatch):
    service, student = another_way_service(store, bank, f"{LOOK} {ASK}", f"{LOOK} {ASK}", ASK)
    learner = service.local_learner()
    conversation = service.start_bank_session(learner, CARMEN_ID)
    observed = []
    monkeypatch.setattr(service, "_record_mastery", lambda *args: observed.append(args))
    first = list(service.reply(conversation, STUCK))[-1].message
    assert len(observed) == 1

    second = list(service.say_another_way(conversation))[-1].message
    assert first.content == f"{LOOK} {ASK}" and second.content == ASK  # the same words again were refused
    assert [m.role for m in service.transcript(conversation)] == ["learner", "tutor", "tutor"]
    assert student.calls[1] == student.calls[0] == student.calls[2]  # the same planned turn, asked the same way
    assert student.params[0].temperature == 0 < student.params[1].temperature <= student.params[2].temperature
    stored = second.planner_state
    assert stored["another_way_of"] == first.id and stored["move"] == first.planner_state["move"]
    assert stored["guard"]["tries"][0]["reasons"] == [SAID_BEFORE]
    assert len(observed) == 1  # the learner did nothing new: mastery does not move again


def test_a_turn_the_planner_wrote_has_no_other_way_and_nothing_is_stored(store, bank):
    service = TutorService(store, bank, PlannerStudent())
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    with pytest.raises(InvalidInput, match="no reply of the tutor's"):
        list(service.say_another_way(conversation))
    list(service.reply(conversation, STUCK))
    with pytest.raises(InvalidInput, match="clearest way"):
        list(service.say_another_way(conversation))
    assert [m.role for m in service.transcript(conversation)] == ["learner", "tutor"]


def test_the_first_wording_is_the_rejected_side_of_a_pair_unless_the_new_one_was_turned_down_too(store, bank, tmp_path):
    service, _ = another_way_service(store, bank, f"{LOOK} {ASK}", ASK)
    learner = service.local_learner()
    conversation = service.start_bank_session(learner, CARMEN_ID)
    first = list(service.reply(conversation, STUCK))[-1].message
    second = list(service.say_another_way(conversation))[-1].message
    options = DatasetOptions(prompt_format=MOVES_FORMAT, max_learner_share=1.0)
    build(store, tmp_path / "pair", options)
    rows = [json.loads(line) for line in (tmp_path / "pair" / "dpo.jsonl").read_text().splitlines()]
    assert [(r["source"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        ("learner", f"[focus] {ASK}", f"[focus] {LOOK} {ASK}")]
    assert rows[0]["prompt"] == second.planner_state["prompt"]["messages"][:-1] == first.planner_state["prompt"]["messages"][:-1]
    kto = [json.loads(line) for line in (tmp_path / "pair" / "kto.jsonl").read_text().splitlines()]
    assert [(r["completion"][0]["content"], r["label"]) for r in kto] == [(f"[focus] {LOOK} {ASK}", False)]

    service.rate(learner, conversation, second.id, THUMBS_DOWN)
    build(store, tmp_path / "both", options)
    assert (tmp_path / "both" / "dpo.jsonl").read_text() == ""
    kto = [json.loads(line) for line in (tmp_path / "both" / "kto.jsonl").read_text().splitlines()]
    assert sorted((r["completion"][0]["content"], r["label"]) for r in kto) == [
        (f"[focus] {LOOK} {ASK}", False), (f"[focus] {ASK}", False)]


def test_a_stopped_reply_ends_at_once_keeps_the_learners_message_and_stores_no_tutor_turn(store, bank):
    student = FakeBackend([f"focus] {LOOK} {ASK}"], prompt_format=MOVES_FORMAT, seconds_per_word=0.5)
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    service.stop(conversation)  # nothing running: nothing to stop, and nothing left set for the next turn
    got = []
    turn = threading.Thread(target=lambda: got.extend(service.reply(conversation, STUCK)))
    started = time.perf_counter()
    turn.start()
    while not service.transcript(conversation):
        time.sleep(0.01)
    service.stop(conversation)
    turn.join()
    assert time.perf_counter() - started < 2.5  # 13 words at 0.5 s would take 6.5 s
    assert got == [] and [m.content for m in service.transcript(conversation)] == [STUCK]
    with pytest.raises(InvalidInput, match="no reply of the tutor's"):
        list(service.say_another_way(conversation))

    student.seconds_per_word = 0
    reply = list(service.reply(conversation, "Then what?"))  # the next turn runs as usual
    assert reply[-1].message.content == f"{LOOK} {ASK}"


def test_a_turn_said_three_ways_pairs_the_last_over_each_earlier_one_and_asks_no_fourth(store, bank, tmp_path):
    third = "How much did the 3 other people bid in all?"
    service, _ = another_way_service(store, bank, f"{LOOK} {ASK}", f"{LOOK} {ASK}", ASK, third)
    learner = service.local_learner()
    conversation = service.start_bank_session(learner, CARMEN_ID)
    list(service.reply(conversation, STUCK))
    list(service.say_another_way(conversation))  # the same words again are refused on the way: no check label
    last = list(service.say_another_way(conversation))[-1].message
    assert last.content == third
    with pytest.raises(InvalidInput, match="all the ways I have"):
        list(service.say_another_way(conversation))
    build(store, tmp_path / "chain", DatasetOptions(prompt_format=MOVES_FORMAT, max_learner_share=1.0))
    rows = [json.loads(line) for line in (tmp_path / "chain" / "dpo.jsonl").read_text().splitlines()]
    assert sorted((r["source"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows) == [
        ("learner", f"[focus] {third}", f"[focus] {LOOK} {ASK}"),
        ("learner", f"[focus] {third}", f"[focus] {ASK}")]  # never the middle wording chosen


def test_asking_for_another_way_counts_against_the_learners_messages_a_minute(store, bank):
    service, _ = another_way_service(store, bank, f"{LOOK} {ASK}", ASK)
    service.messages_per_minute = 2
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, STUCK))
    list(service.say_another_way(conversation))
    with pytest.raises(InvalidInput, match="more than 2 messages a minute"):
        list(service.say_another_way(conversation))
