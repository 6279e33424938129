import threading

import pytest

from tutor.errors import NotFound
from tutor.storage.migrations import migrations
from tutor.storage.store import THUMBS, Store


def test_migrations_create_every_table(store):
    assert {"users", "problems", "conversations", "messages", "feedback"} <= set(
        store.db.table_names()
    )
    assert migrations.pending(store.db) == []


def test_migrations_are_idempotent_on_reopen(tmp_path):
    path = tmp_path / "tutor.db"
    Store(path)
    reopened = Store(path)
    assert migrations.pending(reopened.db) == []


def test_file_database_uses_wal(tmp_path):
    store = Store(tmp_path / "tutor.db")
    assert store.db.journal_mode == "wal"


def test_messages_keep_their_order_and_metadata(store, apples):
    learner = store.ensure_user("ada")
    conversation = store.start_conversation(learner, apples)
    store.append_message(conversation, "learner", "Is it 8?")
    store.append_message(
        conversation, "tutor", "How did you get 8?", model_version="v1", move="probing",
        hint_level=0, planner_state={"step": 0}, generation_params={"temperature": 0.7},
        latency_ms=42,
    )
    first, second = store.messages(conversation)
    assert (first.role, first.content, first.model_version) == ("learner", "Is it 8?", None)
    assert second.model_version == "v1"
    assert second.planner_state == {"step": 0}
    assert second.generation_params == {"temperature": 0.7}
    assert second.latency_ms == 42


def test_conversation_is_only_visible_to_its_learner(store, apples):
    owner = store.ensure_user("ada")
    other = store.ensure_user("bob")
    conversation = store.start_conversation(owner, apples)
    assert store.conversation(conversation.id, owner).problem == apples
    with pytest.raises(NotFound):
        store.conversation(conversation.id, other)
    assert store.conversations(other) == []


def test_a_second_thumb_replaces_the_first(store, apples):
    learner = store.ensure_user("ada")
    conversation = store.start_conversation(learner, apples)
    tutor = store.append_message(conversation, "tutor", "What is 3 + 5?", model_version="v1")
    store.set_feedback(tutor, learner, THUMBS, 1)
    store.set_feedback(tutor, learner, THUMBS, -1)
    assert [f.value for f in store.feedback(tutor)] == [-1]


def test_conversations_survive_a_restart(tmp_path, apples):
    path = tmp_path / "tutor.db"
    before = Store(path)
    learner = before.ensure_user("ada")
    conversation = before.start_conversation(learner, apples)
    before.append_message(conversation, "tutor", "What do you know?", model_version="v1")

    after = Store(path)
    learner_again = after.ensure_user("ada")
    (restored,) = after.conversations(learner_again)
    assert restored.problem == apples
    assert [m.content for m in after.messages(restored)] == ["What do you know?"]


def test_each_thread_gets_its_own_connection(store, apples):
    learner = store.ensure_user("ada")
    conversation = store.start_conversation(learner, apples)
    seen = {}

    def write_from_thread():
        seen["connection"] = store.db.conn
        store.append_message(conversation, "learner", "from another thread")

    worker = threading.Thread(target=write_from_thread)
    worker.start()
    worker.join()
    assert seen["connection"] is not store.db.conn
    assert [m.content for m in store.messages(conversation)] == ["from another thread"]


def test_a_transaction_that_reads_then_writes_waits_for_another_writer_instead_of_failing(tmp_path, apples):
    """WAL mode: a DEFERRED transaction that read before another connection committed cannot
    write at all ("database is locked" at once, whatever the busy timeout); the store's write
    transactions begin IMMEDIATE, so concurrent writers (learners' turns) queue instead."""
    store = Store(tmp_path / "tutor.db")
    ada = store.ensure_user("ada")
    conversation = store.start_conversation(ada, apples)
    other_wrote, errors = threading.Event(), []

    def other_writer():
        try:
            store.append_message(conversation, "learner", "from another thread")
            other_wrote.set()
        except Exception as error:  # reported below
            errors.append(error)

    with store.transaction() as db:
        before = db["messages"].count  # a read: the transaction's snapshot
        writer = threading.Thread(target=other_writer)
        writer.start()
        writer.join(timeout=0.5)  # with a DEFERRED transaction it commits here; now it must wait
        assert not other_wrote.is_set()
        db["messages"].insert({"conversation_id": conversation.id, "role": "tutor", "content": "mine",
                               "created": "2026-01-01"})
    writer.join(timeout=10)
    assert errors == [] and other_wrote.is_set()
    assert [m.content for m in store.messages(conversation)][before:] == ["mine", "from another thread"]
