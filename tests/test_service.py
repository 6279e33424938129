import pytest

from tests.conftest import CARMEN_ID
from tutor.domain.prompting import SOCRATIC_SYSTEM_PROMPT
from tutor.errors import InvalidInput, NotFound
from tutor.service import FALLBACK_VERSION, THUMBS_UP
from tutor.model.fake import FakeBackend
from tutor.service import TutorService


def test_a_turn_streams_and_stores_both_messages(service):
    learner = service.local_learner()
    conversation = service.start_bank_session(learner, CARMEN_ID)

    replies = list(service.reply(conversation, "  I think the desk costs $350. "))

    assert [r.text for r in replies[:-1]] == ["What ", "What do ", "What do you ", "What do you know ",
                                             "What do you know so ", "What do you know so far?"]
    learner_message, tutor_message = service.transcript(conversation)
    assert (learner_message.role, learner_message.content) == ("learner", "I think the desk costs $350.")
    assert tutor_message.role == "tutor"
    assert tutor_message.content == "What do you know so far?"
    assert tutor_message.model_version == "fake"
    assert tutor_message.generation_params["max_new_tokens"] > 0
    assert tutor_message.latency_ms >= 0
    assert replies[-1].message == tutor_message


def test_the_model_is_asked_to_tutor_socratically_with_the_dialogue_so_far(service, fake_backend):
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, "Is it 350?"))
    list(service.reply(conversation, "I added 200 and 150."))

    system, *dialogue = fake_backend.calls[-1]
    assert system.role == "system"
    assert "Never give the final answer" in system.content
    assert conversation.problem.question in system.content
    assert [(m.role, m.content) for m in dialogue] == [
        ("user", "Is it 350?"),
        ("assistant", "What do you know so far?"),
        ("user", "I added 200 and 150."),
    ]
    assert SOCRATIC_SYSTEM_PROMPT.split("\n")[0] in system.content


def test_the_learner_message_is_stored_before_the_model_runs(store, bank):
    seen_by_model = []

    class Recording(FakeBackend):
        def generate(self, messages, params):
            seen_by_model.append([m.content for m in store.messages(conversation)])
            yield from super().generate(messages, params)

    service = TutorService(store, bank, Recording())
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    list(service.reply(conversation, "Is it 500?"))
    assert seen_by_model == [["Is it 500?"]]


@pytest.mark.parametrize("bad", ["", "x" * 20_000, "\x00\x01binary\xff\x00"])
def test_bad_input_stores_nothing(service, bad):
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    with pytest.raises(InvalidInput):
        list(service.reply(conversation, bad))
    assert service.transcript(conversation) == []


def test_an_empty_model_reply_is_replaced_and_marked_as_fallback(store, bank):
    service = TutorService(store, bank, FakeBackend([""]))
    conversation = service.start_bank_session(service.local_learner(), CARMEN_ID)
    *_, last = service.reply(conversation, "hello")
    assert last.message.content.endswith("?")
    assert last.message.model_version == FALLBACK_VERSION


def test_own_problem_sessions_store_the_pasted_text(service):
    conversation = service.start_own_session(service.local_learner(), "  What is 12 + 30?  ")
    assert conversation.problem.question == "What is 12 + 30?"
    assert conversation.problem.source == "learner"
    with pytest.raises(InvalidInput):
        service.start_own_session(service.local_learner(), "")


def test_unknown_bank_problem_is_not_found(service):
    with pytest.raises(NotFound):
        service.start_bank_session(service.local_learner(), "no-such-problem")


def test_only_tutor_turns_of_your_own_conversation_can_be_rated(service, store):
    learner = service.local_learner()
    conversation = service.start_bank_session(learner, CARMEN_ID)
    list(service.reply(conversation, "Is it 350?"))
    learner_message, tutor_message = service.transcript(conversation)

    service.rate(learner, conversation, tutor_message.id, THUMBS_UP)
    assert [f.value for f in store.feedback(tutor_message)] == [1]
    with pytest.raises(NotFound):
        service.rate(learner, conversation, learner_message.id, THUMBS_UP)
    with pytest.raises(InvalidInput):
        service.rate(learner, conversation, tutor_message.id, 5)


def test_sessions_are_listed_newest_first(service):
    learner = service.local_learner()
    first = service.start_bank_session(learner, CARMEN_ID)
    second = service.start_own_session(learner, "What is 2 + 2?")
    list(service.reply(first, "hello again"))
    assert [c.id for c in service.sessions(learner)] == [first.id, second.id]
