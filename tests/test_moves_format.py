"""The trained student's prompt format: move tags, planner notes, moves the planner allows."""

import pytest

from tests.conftest import CARMEN_ID
from tutor.domain.planner import PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.prompting import MOVES_FORMAT, Said, read_move_tag
from tutor.domain.tutoring import judge_draft, move_choices, plan_turn, turn_prompt
from tutor.model.fake import FakeBackend
from tutor.service import PLANNER_VERSION, TutorService


@pytest.fixture
def carmen(bank):
    return bank.get(CARMEN_ID)


def test_move_tags_are_read_back_with_the_text_after_them():
    assert read_move_tag("[focus] What is 3 times 50?") == ("focus", "What is 3 times 50?")
    assert read_move_tag("probing] Why?") == ("probing", "Why?")  # the "[" was the forced start
    assert read_move_tag("What is 3 times 50?") == (None, "What is 3 times 50?")


def test_the_student_picks_among_moves_the_planner_allows(carmen):
    wrong = plan_turn(carmen, PlannerState(), "I think it is 350.", RevealPolicy())
    assert move_choices(wrong)[0] == wrong.move.move  # the planner's own move comes first
    assert set(move_choices(wrong)) == {"focus", "probing"}  # no telling before a partial hint
    hint = plan_turn(carmen, PlannerState(), None, RevealPolicy(), hint_requested=True)
    assert move_choices(hint, hint_requested=True) == (hint.move.move,)  # a hint is the planner's


def test_a_turn_prompt_shows_the_steps_notes_and_tags_and_forces_the_tag_start(carmen):
    turn = plan_turn(carmen, PlannerState(), "I think it is 350.", RevealPolicy())
    history = [Said("learner", "hello"), Said("tutor", "Talk me through it.", "generic"),
               Said("learner", "I think it is 350.")]
    prompt = turn_prompt(carmen, turn, history, prompt_format=MOVES_FORMAT)
    system, *dialogue, start = prompt.messages
    assert carmen.question in system.content and "1) " in system.content
    assert "500" not in system.content  # steps as calculations, never their results
    assert dialogue[1].content == "[generic] Talk me through it."
    assert dialogue[2].content.startswith("I think it is 350.\n(learner: incorrect; next: step")
    assert (start.role, start.content) == ("assistant", "[")
    assert prompt.constrained and prompt.read("probing] Why 350?") == ("probing", "Why 350?")
    assert prompt.read("telling] It is 500.") == (None, "")  # not a move this turn allows


def test_a_draft_is_judged_by_the_move_it_chose(carmen):
    turn = plan_turn(carmen, PlannerState(), "I think it is 350.", RevealPolicy())
    prompt = turn_prompt(carmen, turn, [Said("learner", "I think it is 350.")], prompt_format=MOVES_FORMAT)
    chosen = judge_draft("focus] 350 isn't right. How much do the 3 other bids add?", turn, prompt)
    assert (chosen.move, chosen.text, chosen.verdict.ok) == ("focus", "350 isn't right. How much do the 3 other bids add?",
                                                            True)
    leaked = judge_draft("focus] The desk costs 500, right?", turn, prompt)
    # nothing was shown: the planner's own turn goes out, with the planner's move
    assert turn.move.move == "probing" and not leaked.verdict.ok
    assert (leaked.move, leaked.text) == ("probing", turn.planned_text) and "500" not in leaked.text
    untagged = judge_draft("How much do the bids add?", turn, prompt)
    assert not untagged.verdict.ok and "opens with no allowed move" in untagged.verdict.reasons


def test_the_service_streams_a_trained_students_turn_without_its_tag(store, bank):
    student = FakeBackend(["probing] How did you get 350? Walk me through it.",
                           "focus] Which bids came after the opening one?"],
                          version="tiny+v1", prompt_format=MOVES_FORMAT)
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    replies = list(service.reply(conversation, "I think it is 350."))
    assert all(not r.text.startswith(("probing", "[")) for r in replies)
    tutor = service.transcript(conversation)[-1]
    assert (tutor.content, tutor.move, tutor.model_version) == (
        "How did you get 350? Walk me through it.", "probing", "tiny+v1")
    assert student.params[-1].choices == ("probing", "focus")  # the model's first token is constrained
    assert student.calls[-1][-1].content == "["

    list(service.reply(conversation, "Because those are the bids."))
    _, *dialogue, _ = student.calls[-1]
    # the history carries the stored move and the planner's note on each learner message
    assert dialogue[0].content.startswith("I think it is 350.\n(learner: incorrect")
    assert dialogue[1].content == "[probing] How did you get 350? Walk me through it."


def test_a_trained_student_that_opens_without_a_tag_falls_back_to_the_planner(store, bank):
    student = FakeBackend(["Well, the desk costs quite a lot of money overall, you see."], prompt_format=MOVES_FORMAT)
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, "I think it is 350.")
    assert last.message.model_version == PLANNER_VERSION
    assert last.message.planner_state["guard"]["reasons"] == ["opens with no allowed move"]


def test_evaluation_scores_the_move_a_trained_student_chose(carmen):
    from tutor.evaluation.harness import EvalTutor, TurnRequest

    student = FakeBackend(["probing] Why do you think 350?"], prompt_format=MOVES_FORMAT)
    tutor = EvalTutor(student)
    asks = TurnRequest(carmen, PlannerState(), [], "I think it is 350.")
    hint = TurnRequest(carmen, PlannerState(), [], None)
    chosen, forced = tutor.turns([asks, hint])
    assert (chosen.move, chosen.text) == ("probing", "Why do you think 350?")
    # a hint is the planner's move: the student's "probing]" is not a tag it may open with there
    assert forced.move == forced.plan.move.move == "focus"
    learner, said = tutor.said(asks, chosen)  # the next turn's history
    assert learner.note.startswith("(learner: incorrect") and said == Said("tutor", "Why do you think 350?", "probing")


class PreparingBackend(FakeBackend):
    """A fake engine that records the prompt starts it is asked to prefill ahead."""

    def __init__(self, replies, prompt_format=MOVES_FORMAT):
        super().__init__(replies, prompt_format=prompt_format)
        self.prepared = []

    def prepare(self, messages):
        self.prepared.append(list(messages))


def test_each_turn_prompt_begins_with_what_was_prefilled_while_the_learner_wrote(store, bank):
    """The engine reads the problem and the recent turns ahead; a turn's prompt must begin with
    exactly that, also once older turns no longer fit (else the kept state is of no use)."""
    student = PreparingBackend(["probing] How did you get that number?"])
    service = TutorService(store, bank, student)
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    assert [m.role for m in student.prepared[0]] == ["system"]
    said = ["I think it is 350.", "I don't know", "Is it 7?", "hmm 12", "I added them", "maybe 40", "no idea"]
    for turn, text in enumerate(said, 1):
        list(service.reply(conversation, text))
        prompt, ahead = student.calls[-1], student.prepared[turn - 1]
        assert prompt[:len(ahead)] == ahead
        assert [m.role for m in prompt[len(ahead):]] == ["user", "assistant"]  # the learner's message, the start
        assert prompt[len(ahead)].content.startswith(text)
    assert len(student.prepared) == len(said) + 1 and len(student.calls[-1]) < 2 * len(said)  # the window slid
    resumed = service.resume_session(service.local_learner(), conversation.id)
    assert resumed.id == conversation.id and student.prepared[-1] == student.prepared[-2]
    # a solved conversation has no next turn to prepare; the instruct format has no stable start
    solved = service.start_bank_session(service.local_learner("solver"), CARMEN_ID)
    count = len(student.prepared)
    list(service.reply(solved, f"The answer is {bank.get(CARMEN_ID).answer}"))
    assert service.progress(solved).solved and len(student.prepared) == count
    instruct = PreparingBackend(["How did you get that?"], prompt_format="instruct")
    other = TutorService(store, bank, instruct)
    list(other.reply(other.start_bank_session(other.local_learner(), CARMEN_ID), "350"))
    assert instruct.prepared == []
