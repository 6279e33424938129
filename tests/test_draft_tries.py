"""A failed draft is tried again afresh; the learner sees a draft only once the whole of it has passed."""

from dataclasses import replace

import pytest

from tests.conftest import CARMEN_ID
from tutor.domain.faithfulness import AFFIRMING_OPENINGS, NEGATING_OPENINGS, negates
from tutor.domain.planner import PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.prompting import MOVES_FORMAT, SPINE_FORMAT, Said
from tutor.domain.tutoring import CELEBRATION_OPENINGS, DraftReader, ended, judge_draft, plan_turn, turn_prompt
from tutor.evaluation.harness import EvalTutor, TurnRequest
from tutor.evaluation.metrics import shown_then_replaced
from tutor.model.backend import retry_params
from tutor.model.fake import FakeBackend
from tutor.service import PLANNER_VERSION, TutorService

STUCK = "I don't know."  # the planner's turn: the focus hint on the first step, and a question about it
LOOK = "Let us look at the other people's bids."  # the hint's words, no question
ASK = "Which bids did the 3 other people make?"  # a question about the step


@pytest.fixture
def carmen(bank):
    return bank.get(CARMEN_ID)


@pytest.fixture
def stuck_turn(carmen):
    turn = plan_turn(carmen, PlannerState(), STUCK, RevealPolicy())
    return turn, turn_prompt(carmen, turn, [Said("learner", STUCK)], prompt_format=MOVES_FORMAT)


def test_nothing_of_a_failing_draft_is_shown_however_well_it_began(stuck_turn):
    turn, prompt = stuck_turn
    reader = DraftReader(turn, prompt)
    failed = judge_draft(f"focus] {LOOK} You are right!", turn, prompt, reader=reader)  # praise after "I don't know"
    assert not failed.verdict.ok and failed.text == turn.planned_text and failed.seen == (turn.planned_text,)
    assert failed.draft == f"{LOOK} You are right!"
    unfinished = judge_draft(f"focus] {LOOK}", turn, prompt)  # passes sentence by sentence, asks nothing
    assert "asks nothing toward the next step" in unfinished.verdict.reasons
    assert unfinished.text == turn.planned_text
    whole = judge_draft(f"focus] {LOOK} {ASK}", turn, prompt)
    assert whole.verdict.ok and whole.text == whole.seen[-1] == f"{LOOK} {ASK}"


def test_a_failed_draft_is_drafted_afresh_and_a_model_failure_is_not_retried(stuck_turn):
    turn, prompt = stuck_turn
    reader = DraftReader(turn, prompt)
    judge_draft("focus] The desk costs 500, right?", turn, prompt, reader=reader)
    again = reader.next_try()
    assert again.prompt == prompt and again.read == []
    broken = DraftReader(turn, prompt)
    broken.failure = type(reader.failure)(("the model failed",))
    assert broken.next_try() is None
    passed = DraftReader(turn, prompt)
    assert judge_draft(f"focus] {ASK}", turn, prompt, reader=passed).verdict.ok
    assert passed.next_try() is None


def test_the_service_sends_the_try_that_passes_and_stores_the_failed_ones(store, bank):
    student = FakeBackend(["focus] The desk costs 500, right?",  # gives the answer away
                           f"focus] {LOOK} You are right!",  # praises a learner who is stuck
                           f"focus] {LOOK} {ASK}"], prompt_format=MOVES_FORMAT)
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    replies = [reply.text for reply in service.reply(conversation, STUCK)]
    assert replies == [f"{LOOK} {ASK}"]  # the learner sees the passing turn, whole, and nothing before it
    assert [call[-1].content for call in student.calls] == ["["] * 3  # each try afresh
    assert student.params[0].temperature == 0 < student.params[1].temperature  # the first greedy, then sampled
    assert student.params[1].choices == ("focus", "probing")  # afresh: the move is chosen again
    assert student.params[0].ruled_out == student.params[1].ruled_out and "Yes" in student.params[0].ruled_out
    message = service.transcript(conversation)[-1]
    guard = message.planner_state["guard"]
    assert message.model_version == "fake" and guard["passed"] and message.content == f"{LOOK} {ASK}"
    assert [tried["output"] for tried in guard["tries"]] == [
        "focus] The desk costs 500, right?", f"focus] {LOOK} You are right!"]
    assert any("500" in reason for reason in guard["tries"][0]["reasons"])
    assert any("right" in reason for reason in guard["tries"][1]["reasons"])


def test_after_its_last_try_the_planners_own_turn_goes_out(store, bank):
    student = FakeBackend([f"focus] {LOOK} You are right!", f"focus] {LOOK}"], prompt_format=MOVES_FORMAT)
    service = TutorService(store, bank, student, draft_tries=2)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, STUCK)
    assert len(student.calls) == 2 and last.text == last.message.planner_state["planned_text"]
    assert last.message.model_version == PLANNER_VERSION
    guard = last.message.planner_state["guard"]
    assert not guard["passed"] and "asks nothing toward the next step" in guard["reasons"]
    only_once = TutorService(store, bank, FakeBackend(["focus] The desk costs 500, right?"],
                                                      prompt_format=MOVES_FORMAT), draft_tries=1)
    conversation = only_once.start_bank_session(only_once.local_learner(), CARMEN_ID)
    *_, last = only_once.reply(conversation, STUCK)
    assert last.message.model_version == PLANNER_VERSION and len(only_once.student.calls) == 1


def test_the_evaluation_counts_first_drafts_and_drafts_after_tries(carmen):
    student = FakeBackend([f"focus] {LOOK} You are right!", f"focus] {LOOK} {ASK}"], prompt_format=MOVES_FORMAT)
    request = TurnRequest(carmen, PlannerState(), [], STUCK)
    result, = EvalTutor(student, tries=2).turns([request])
    assert result.verdict.ok and not result.first_ok
    assert result.text == f"{LOOK} {ASK}"
    assert result.draft == f"{LOOK} You are right!"  # unguarded figures read the first draft
    assert student.params[0].temperature == 0 and student.params[1].temperature > 0
    assert shown_then_replaced(result.seen) == 0
    once, = EvalTutor(FakeBackend([f"focus] {LOOK} You are right!"], prompt_format=MOVES_FORMAT),
                      tries=1).turns([request])
    assert not once.verdict.ok and not once.first_ok


def test_each_failed_try_becomes_a_rejected_draft_beside_the_sent_turn(store, bank, tmp_path):
    import json

    from tutor.training.feedback import DatasetOptions, build

    student = FakeBackend([f"focus] {LOOK} You are right!", f"focus] {LOOK} {ASK}"], prompt_format=MOVES_FORMAT)
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, STUCK))
    # every pair, length not held (its own test: test_rounds)
    build(store, tmp_path, DatasetOptions(prompt_format=MOVES_FORMAT, max_learner_share=1.0,
                                          max_length_ratio=float("inf")))
    pair, = [json.loads(line) for line in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    assert pair["chosen"][0]["content"] == f"[focus] {LOOK} {ASK}"
    assert pair["rejected"][0]["content"] == f"[focus] {LOOK} You are right!"
    assert pair["prompt"][-1]["role"] == "user"  # the turn's forced start is the completion's


def test_a_sentence_said_twice_in_a_turn_fails(stuck_turn):
    turn, prompt = stuck_turn
    twice = judge_draft(f"focus] {LOOK} {LOOK} {ASK}", turn, prompt)
    assert not twice.verdict.ok and "says the same sentence twice" in twice.verdict.reasons


def test_the_number_of_tries_is_a_setting_the_service_keeps(tmp_path, monkeypatch):
    import argparse

    from tutor.bootstrap import open_service
    from tutor.config import add_data_dir_argument, add_model_arguments, settings_from_args

    def settings(argv):
        parser = argparse.ArgumentParser()
        add_data_dir_argument(parser)
        add_model_arguments(parser)
        return settings_from_args(parser.parse_args(argv + ["--student-model", "fake", "--data-dir", str(tmp_path)]))

    assert settings([]).draft_tries == 3
    assert open_service(settings(["--draft-tries", "1"]), progress=lambda _: None).draft_tries == 1
    monkeypatch.setenv("TUTOR_DRAFT_TRIES", "5")
    assert settings([]).draft_tries == 5


def test_the_gate_measures_with_the_tries_its_slice_names():
    from tutor.config import DIALOGUES_DIR
    from tutor.evaluation.gate import GateSlice, measure

    class Student(FakeBackend):  # its greedy drafts say nothing; its sampled ones say the planner's turn
        def generate(self, messages, params):
            planned = messages[-2].content.split("tutor: ", 1)[-1].rstrip(")")
            self.replies = ["Hmm." if params.temperature == 0 else planned]
            return super().generate(messages, params)

    once = measure(Student(prompt_format=SPINE_FORMAT), DIALOGUES_DIR, GateSlice(limit=1, attacks=0, draft_tries=1))
    twice = measure(Student(prompt_format=SPINE_FORMAT), DIALOGUES_DIR, GateSlice(limit=1, attacks=0, draft_tries=2))
    assert twice["model_carried_rate"] > once["model_carried_rate"]
    assert twice["model_carried_rate_unguarded"] == once["model_carried_rate_unguarded"]
    assert GateSlice().to_json()["draft_tries"] == 3  # recorded figures measured otherwise are not reused


def test_a_last_sentence_left_without_a_stop_is_ended_as_the_question_or_statement_it_is(stuck_turn):
    turn, prompt = stuck_turn
    asks = judge_draft("focus] OK, so which bids did the 3 other people make", turn, prompt,
                       reader=DraftReader(turn, prompt))
    assert asks.verdict.ok and asks.text == "OK, so which bids did the 3 other people make?"  # asks: no second try
    assert [ended(s) for s in ("What's 3 * 50", "Isn't it 150", "Look at 3 * 50 =", "Add them")] == [
        "What's 3 * 50?", "Isn't it 150?", "Look at 3 * 50 =", "Add them."]  # a sum cut at "=" is left as it is
    both = judge_draft(f"focus] {LOOK} {ASK[:-1]}", turn, prompt)  # ended with "?"
    assert both.verdict.ok and both.text == f"{LOOK} {ASK}"


def test_a_model_picking_its_move_is_kept_from_openings_the_check_would_fail(stuck_turn, carmen):
    turn, prompt = stuck_turn
    affirming = {*AFFIRMING_OPENINGS, *(opening.lower() for opening in AFFIRMING_OPENINGS)}
    assert prompt.constrained and set(prompt.ruled_out) == affirming  # after a wrong value
    for opening in prompt.ruled_out:  # each would fail with its first words
        judged = judge_draft(f"focus] {opening}, which bids did the 3 other people make?", turn, prompt)
        assert any("tells the learner they are right" in reason for reason in judged.verdict.reasons), opening
    assert all(negates(f"{opening}.") for opening in NEGATING_OPENINGS)
    right = plan_turn(carmen, PlannerState(), "3 * 50 = 150", RevealPolicy())
    after_right = turn_prompt(carmen, right, [Said("learner", "3 * 50 = 150")], prompt_format=MOVES_FORMAT)
    assert set(after_right.ruled_out) == {*NEGATING_OPENINGS, *(opening.lower() for opening in NEGATING_OPENINGS)}
    assert prompt.continued("focus", LOOK).ruled_out == ()  # its move is forced


def test_a_calculation_split_over_two_sentences_is_read_whole(stuck_turn):
    turn, prompt = stuck_turn
    split = judge_draft(f"focus] Look at 3 * 50 = 200 dollars. {ASK}", turn, prompt)  # 200 is given: the guard lets it by
    assert not split.verdict.ok and any("false calculation" in reason for reason in split.verdict.reasons)
    ended_there = judge_draft("focus] Look at 3 * 50 = [probing] Why?", turn, prompt)
    assert not ended_there.verdict.ok  # the model began another turn: this one ended at "=", and asked nothing


def test_a_move_tag_in_round_brackets_ends_the_turn_as_in_square_ones():
    from tutor.domain.tutoring import own_turn

    # v5 wrote this in `tutor chat` (2026-12-02): "(focus)" reached the learner
    assert own_turn("well done\n(focus) can you walk me through your reasoning here?") == "well done"
    assert own_turn("Well done. (Probing) Why?") == "Well done."
    assert own_turn("Look at (3 x 50) and (the bids).") == "Look at (3 x 50) and (the bids)."


def test_a_turn_that_must_celebrate_opens_with_its_celebration(carmen):
    state = PlannerState(step=3, completed=(0, 1, 2), known_values=("150", "300"))
    turn = plan_turn(carmen, state, "The final answer is 500.", RevealPolicy())
    prompt = turn_prompt(carmen, turn, [Said("learner", "The final answer is 500.")], prompt_format=MOVES_FORMAT)
    first = judge_draft("200 + 300 = 500. So the desk costs 500.", turn, prompt)
    assert first.seen == (turn.planned_text,)
    assert "does not open with the verdict on the learner's value" in first.verdict.reasons
    assert prompt.first_words == CELEBRATION_OPENINGS  # its first token opens with praise
    assert prompt.continued("generic", "Well done.").first_words == ()
    bare = judge_draft("Well done, you solved it!", turn, prompt)  # which answer? the learner should know
    assert "does not open with the verdict on the learner's value" in bare.verdict.reasons
    later = judge_draft("Well done, $500 is the answer! 200 + 300 = 500.", turn, prompt)
    assert later.verdict.ok and later.seen == ("Well done, $500 is the answer! 200 + 300 = 500.",)


def test_a_celebration_opens_with_a_praise_word_the_model_chooses(store, bank):
    student = FakeBackend(["Well done, you solved it: the desk cost $500!"], prompt_format=MOVES_FORMAT)
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    replies = [reply.text for reply in service.reply(conversation, "The final answer is 500.")]
    assert replies[-1] == "Well done, you solved it: the desk cost $500!"
    assert student.params[0].choices == CELEBRATION_OPENINGS  # the backend holds its first token to them
    stored = store.messages(conversation)[-1]
    assert stored.generation_params["choices"] == list(CELEBRATION_OPENINGS)


class SpareBackend(FakeBackend):
    """A fake engine with a worker free for a spare draft (`idle`), which records what it closed."""

    def __init__(self, replies, idle=True):
        super().__init__(replies, prompt_format=MOVES_FORMAT)
        self.idle, self.spares, self.closed, self.since = idle, [], [], []

    def generate(self, messages, params, since=None):
        self.since.append(since)
        reply = super().generate(messages, params)
        call = len(self.calls) - 1
        reply._stop = lambda: self.closed.append(call)
        return reply

    def generate_if_idle(self, messages, params, since=None):
        if not self.idle:
            return None
        self.spares.append(len(self.calls))
        return self.generate(messages, params, since)


def test_a_spare_draft_decodes_beside_the_first_and_is_the_next_try(store, bank):
    student = SpareBackend(["focus] The desk costs 500, right?",  # fails: the spare goes on
                            f"focus] {ASK}",
                            "focus] Unread."])
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, STUCK)
    assert last.text == ASK and last.message.planner_state["guard"]["passed"]
    # the spare (call 1) was asked for with the first draft, as the second try would be, and sent;
    # the spare beside it (call 2, a third try) was stopped unread
    assert student.spares == [1, 2] and len(student.calls) == 3
    first = student.params[0]  # the first draft's choices and ruled-out openings, as a second try
    sequential = retry_params(replace(service.params, choices=first.choices, ruled_out=first.ruled_out), 1)
    assert first.choices == ("focus", "probing") and "Yes" in first.ruled_out
    assert student.params[1] == sequential and student.calls[1] == student.calls[0]
    assert 2 in student.closed
    assert [tried["output"] for tried in last.message.planner_state["guard"]["tries"]] == [
        "focus] The desk costs 500, right?"]


def test_no_spare_is_asked_of_a_busy_engine(store, bank):
    busy = SpareBackend(["focus] The desk costs 500, right?", f"focus] {ASK}"],
                        idle=False)
    service = TutorService(store, bank, busy)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, STUCK)
    assert busy.spares == [] and len(busy.calls) == 2 and last.text == ASK
    # both tries queue in the turn's place: when it began, not when each was asked for
    assert busy.since[0] is not None and busy.since == [busy.since[0]] * 2
