"""The learner page of the running app, logged in as a learner, driven with gradio_client."""

import pytest
from gradio_client import Client

from tests.conftest import CARMEN_ID, FIRST_REPLY, PASSWORD
from tests.test_retrieval import BagOfWords
from tests.web import login, serving
from tutor.config import DIALOGUES_FILE
from tutor.domain.dialogues import read_dialogues
from tutor.model.retrieval import Retrieval
from tutor.service import TutorService
from tutor.ui.access import SESSION_COOKIE
from tutor.ui.web import build_app


@pytest.fixture
def service(store, bank, fake_backend):
    """The service with a retrieval index (a fast stand-in embedder)."""
    retrieval = Retrieval(BagOfWords(), list(read_dialogues(DIALOGUES_FILE))[:20], list(bank),
                          progress=lambda _: None)
    return TutorService(store, bank, fake_backend, retrieval=retrieval)


@pytest.fixture
def app_client(service, accounts, school):
    """gradio_client on the learner page, holding ann's session cookie."""
    with serving(build_app(service, accounts)) as url:
        cookie = login(url, "ann", PASSWORD).cookies[SESSION_COOKIE]
        yield Client(f"{url}/learn/", verbose=False, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})


def _session_id(picker_update) -> int:
    return picker_update["value"]


def _messages(chat) -> list[dict]:
    """The chat's messages, sent as a value or inside an update (with the 👍/👎 shown)."""
    return chat["value"] if isinstance(chat, dict) else chat


def test_a_learner_chats_one_turn_and_gives_a_thumbs_up(app_client, service, store, school):
    problem_text, chat, picker, progress, kept = app_client.predict(CARMEN_ID, api_name="/start_problem")
    assert "Carmen goes to an auction" in problem_text
    opening = ("assistant", 'Let\'s work on this together. The problem asks: "How much money, in dollars, '
                            'does the desk cost her?" How would you begin?')  # the tutor speaks first
    assert [(m["role"], m["content"][0]["text"]) for m in _messages(chat)] == [opening]
    assert "Step 1 of 4" in progress
    session_id = _session_id(picker)
    assert kept == session_id  # the browser keeps it, for a reload

    chat, cleared_box, _ = app_client.predict("I think it costs $350", api_name="/send")
    assert cleared_box == ""
    assert [(m["role"], m["content"][0]["text"]) for m in _messages(chat)] == [
        opening,
        ("user", "I think it costs $350"),
        ("assistant", FIRST_REPLY),
    ]

    assert app_client.predict(session_id, 1, True, api_name="/rate") == "thanks"
    _, reopened, *_ = app_client.predict(session_id, api_name="/open_session")
    assert reopened["feedback_value"] == [None, "Like"]  # the 👍 shows as given

    conversation = service.conversation(school.ann, session_id)
    learner_message, tutor_message = service.transcript(conversation)
    assert learner_message.content == "I think it costs $350"
    assert tutor_message.model_version == "fake"
    assert [f.value for f in store.feedback(tutor_message)] == [1]


@pytest.mark.parametrize("bad", ["", "7" * 20_000, "\x00\x01\x02junk\x7f\x00"])
def test_bad_input_through_the_page_stores_nothing(app_client, service, bad, school):
    _, _, picker, _, _ = app_client.predict(CARMEN_ID, api_name="/start_problem")
    app_client.predict(bad, api_name="/send")
    conversation = service.conversation(school.ann, _session_id(picker))
    assert service.transcript(conversation) == []


def test_rating_a_learner_message_is_refused(app_client):
    _, _, picker, _, _ = app_client.predict(CARMEN_ID, api_name="/start_problem")
    app_client.predict("Is it 500?", api_name="/send")
    with pytest.raises(Exception, match="Only the tutor's messages"):
        app_client.predict(_session_id(picker), 0, True, api_name="/rate")


def test_a_past_session_can_be_reopened(app_client):
    _, _, picker, _, _ = app_client.predict(CARMEN_ID, api_name="/start_problem")
    app_client.predict("Is it 500?", api_name="/send")
    app_client.predict("What is 2 + 2?", api_name="/start_own_problem")
    problem_text, chat, _, _, _ = app_client.predict(_session_id(picker), api_name="/open_session")
    assert "Carmen" in problem_text
    assert [m["role"] for m in _messages(chat)] == ["assistant", "user", "assistant"]  # the opening line first


def test_hint_button_gives_the_next_rung_and_progress_shows_mastery(app_client, service, school):
    *_, picker, _, _ = app_client.predict(CARMEN_ID, api_name="/start_problem")
    chat, _, _ = app_client.predict(api_name="/hint")
    assert _messages(chat)[1]["content"][0]["text"] == "Can I have a hint?"
    conversation = service.conversation(school.ann, _session_id(picker))
    assert service.transcript(conversation)[-1].hint_level == 2  # the focus rung

    _, _, progress = app_client.predict("3 * 50 = 150", api_name="/send")
    assert "Step 2 of 4 (1 done)" in progress
    assert '<progress value="' in progress and 'aria-label="multiplication"' in progress


def test_own_problem_without_a_teacher_is_tutored_in_labelled_explain_mode(app_client):
    problem_text, _, _, progress, _ = app_client.predict(
        "Sam has 7 apples and buys 6 more. How many now?", api_name="/start_own_problem")
    assert "Explain mode" in problem_text and "Explain mode" in progress
    chat, _, _ = app_client.predict("7 + 6 = 12", api_name="/send")
    assert _messages(chat)[-1]["role"] == "assistant"


def test_find_similar_lists_problems_like_the_picked_one(app_client):
    update = app_client.predict("6000044", None, api_name="/find_similar")
    ids = [value for _, value in update["choices"]]
    assert len(ids) == 5 and "6000044" not in ids


def test_a_thumbs_down_asks_what_was_wrong_and_the_teacher_reads_it(app_client, service, store, school):
    *_, picker, _, _ = app_client.predict(CARMEN_ID, api_name="/start_problem")
    app_client.predict("I think it costs $350", api_name="/send")
    session_id = _session_id(picker)
    app_client.predict(session_id, 1, False, api_name="/rate")
    conversation = service.conversation(school.ann, session_id)
    tutor_turn = service.transcript(conversation)[1]
    service.rate(school.ann, conversation, tutor_turn.id, -1, "  It just said no.  ")
    assert [f.comment for f in store.feedback(tutor_turn)] == ["It just said no."]
    (row,) = store.tutor_turns(store.class_named("5A").id)
    assert (row["thumbs"], row["comment"]) == (-1, "It just said no.")
