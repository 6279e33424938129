"""Accounts, logins, sessions, limits and privacy: each refusal says why and changes nothing."""

import threading
import time
from datetime import timedelta

import pytest

from tests.conftest import CARMEN_ID, PASSWORD, Clock, fast_hasher
from tests.test_access import snapshot
from tests.web import anonymous, call, form_field, function_index, login, new_tab, post_login
from tutor.accounts import EXPIRED, WRONG_CREDENTIALS, AccountLimits, AccountService
from tutor.cli import main as cli
from tutor.errors import AccessDenied, InvalidInput, LoginRefused, LoginThrottled
from tutor.model.fake import FakeBackend
from tutor.service import TutorService
from tutor.storage.store import Store


def test_passwords_are_stored_as_argon2_hashes(accounts, store, school):
    stored = store.password_hash(school.ann)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    user, token = accounts.login("ann", PASSWORD)
    assert user == school.ann and accounts.session_user(token) == school.ann


def test_a_wrong_password_is_refused_and_no_session_is_made(accounts, store, school):
    for name, password in [("ann", "wrong password"), ("nobody", PASSWORD), ("ann", "")]:
        with pytest.raises(LoginRefused, match=WRONG_CREDENTIALS):
            accounts.login(name, password)
    assert store.db["sessions"].count == 0


def test_logins_are_throttled_after_five_failures_even_with_the_right_password(accounts, school):
    for _ in range(5):
        with pytest.raises(LoginRefused):
            accounts.login("ann", "guess", "10.0.0.1")
    with pytest.raises(LoginThrottled, match="Too many failed logins. Try again in"):
        accounts.login("ann", PASSWORD, "10.0.0.1")
    accounts.login("bob", PASSWORD, "10.0.0.1")  # another account is not slowed
    accounts.login("ann", PASSWORD, "10.0.0.2")  # nor is the owner, from anywhere else


def test_logins_at_once_hash_a_bounded_number_of_passwords_at_a_time(store, school):
    """argon2 takes 64 MiB a hash in production: 16 logins at once must not take 16 of them."""
    from tutor.accounts import HASHES_AT_ONCE

    class Counting:
        def __init__(self):
            self.hasher, self.now, self.most, self.lock = fast_hasher(), 0, 0, threading.Lock()

        def hash(self, password):
            return self.hasher.hash(password)

        def check_needs_rehash(self, stored):
            return False

        def verify(self, stored, password):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.05)
            with self.lock:
                self.now -= 1
            return self.hasher.verify(stored, password)

    counting = Counting()
    accounts = AccountService(store, hasher=counting)
    for i in range(8):
        accounts.add_user(None, f"pupil{i}", "learner", PASSWORD)
    threads = [threading.Thread(target=accounts.login, args=(f"pupil{i}", PASSWORD)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert counting.most == HASHES_AT_ONCE
    assert store.db["sessions"].count == 8


def test_the_throttle_lifts_after_the_lockout(store, school):
    clock = Clock()
    accounts = AccountService(store, hasher=fast_hasher(), clock=clock)
    for _ in range(5):
        with pytest.raises(LoginRefused):
            accounts.login("ann", "guess")
    clock.now += timedelta(minutes=16)
    accounts.login("ann", PASSWORD)


def test_a_session_expires_after_idle_hours_and_says_so(store, school):
    clock = Clock()
    accounts = AccountService(store, AccountLimits(session_hours=2), hasher=fast_hasher(), clock=clock)
    _, token = accounts.login("ann", PASSWORD)
    clock.now += timedelta(hours=1, minutes=50)
    assert accounts.session_user(token) == school.ann  # activity slides the window on
    clock.now += timedelta(hours=1, minutes=50)
    assert accounts.session_user(token) == school.ann
    clock.now += timedelta(hours=2, minutes=1)
    with pytest.raises(AccessDenied, match=EXPIRED):
        accounts.session_user(token)
    with pytest.raises(AccessDenied, match=EXPIRED):
        accounts.session_user(token)  # each request says so ...
    clock.now += timedelta(days=1, minutes=1)
    accounts.apply_retention()
    with pytest.raises(AccessDenied, match="Please log in"):
        accounts.session_user(token)  # ... until the row is purged a day later


def test_disabling_logs_out_and_refuses_login(accounts, school):
    _, token = accounts.login("ann", PASSWORD)
    accounts.set_disabled(school.root, "ann", True)
    with pytest.raises(AccessDenied):
        accounts.session_user(token)
    with pytest.raises(LoginRefused, match="disabled"):
        accounts.login("ann", PASSWORD)


@pytest.mark.parametrize("name, role, password, message", [
    ("a", "learner", None, "2 to 40"),
    ("x" * 41, "learner", None, "2 to 40"),
    ("bad name!", "learner", None, "2 to 40"),
    ("carl", "wizard", None, "role is one of"),
    ("carl", "learner", "short", "8 to 200"),
    ("ann", "learner", None, "already a user"),
])
def test_bad_account_input_is_refused_and_stores_nothing(accounts, store, school, name, role, password, message):
    before = snapshot(store)
    with pytest.raises(InvalidInput, match=message):
        accounts.add_user(school.root, name, role, password)
    assert snapshot(store) == before


def test_the_first_run_makes_an_admin_with_a_one_time_password_and_a_demo_class(accounts, store):
    created = accounts.ensure_first_admin()
    assert [(role, name) for role, name, _ in created] == [
        ("admin", "admin"), ("teacher", "demo-teacher"), ("learner", "demo-learner")]
    assert store.user_named("admin").must_change_password
    demo = store.class_named("demo-class")
    assert demo.teacher_id == store.user_named("demo-teacher").id
    assert [u.name for u in store.members(demo)] == ["demo-learner"]
    assert accounts.ensure_first_admin() == []  # only once


def test_the_only_admin_cannot_be_demoted_disabled_or_deleted(accounts, school):
    for change in (lambda: accounts.set_role(None, "root", "teacher"),
                   lambda: accounts.set_disabled(None, "root", True),
                   lambda: accounts.delete_user(None, "root")):
        with pytest.raises(InvalidInput, match="only admin"):
            change()


def test_export_then_delete_leaves_no_row_of_the_learner_and_the_audit_log_says_who(
        accounts, store, bank, school):
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    own = service.start_own_session(school.ann, "Ann has 4 pens and buys 3 more. How many now?")
    for conversation in (service.start_bank_session(school.ann, CARMEN_ID), own):
        replies = list(service.reply(conversation, "3 x 50 = 150"))
        service.rate(school.ann, conversation, replies[-1].message.id, -1)
    bobs = service.start_bank_session(school.bob, CARMEN_ID)
    list(service.reply(bobs, "Is it 350?"))
    _, token = accounts.login("ann", PASSWORD)
    for _ in range(2):
        with pytest.raises(LoginRefused):
            accounts.login("ann", "nope")

    exported = accounts.export_user(school.root, "ann")
    assert len(exported["conversations"]) == 2 and exported["mastery"]
    assert exported["conversations"][0]["messages"][1]["feedback"][0]["value"] == -1
    assert exported["classes"] == ["5A"]

    accounts.delete_user(school.root, "ann")
    ann = school.ann
    conversations = {c["id"] for c in exported["conversations"]}
    messages = {m["id"] for c in exported["conversations"] for m in c["messages"]}
    for table in store.db.table_names():
        for row in store.db[table].rows:
            assert row.get("user_id") != ann.id and row.get("name") != "ann", (table, row)
            assert row.get("conversation_id") not in conversations, (table, row)
            assert row.get("message_id") not in messages, (table, row)
            assert row.get("id") not in {"messages": messages, "conversations": conversations}.get(table, ())
            assert "Ann has 4 pens" not in repr(row), (table, row)  # the problem she typed in
            if table == "audit_log":
                assert row["actor"] != "ann" and "ann" not in (row["detail"] or ""), row
    assert store.problem(own.problem.id) is None  # the problem she typed in
    assert store.db["messages"].count == 2  # bob's turn is untouched
    actions = [(row["actor"], row["action"], row["target"]) for row in store.audit_log()]
    assert actions[:2] == [("root", "delete_user", f"user:{ann.id}"),
                           ("root", "export_user", f"user:{ann.id}")]


def test_retention_purges_old_transcripts_and_keeps_mastery(store, bank, school):
    clock = Clock()
    accounts = AccountService(store, hasher=fast_hasher(), clock=clock)
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    conversation = service.start_bank_session(school.ann, CARMEN_ID)
    list(service.reply(conversation, "3 x 50 = 150"))
    accounts.set_retention_days(school.root, 30)
    assert accounts.apply_retention() == 0
    clock.now += timedelta(days=31)
    assert accounts.apply_retention() == 1
    assert service.transcript(conversation) == []
    assert store.conversation(conversation.id, school.ann).status == "purged"
    assert store.mastery(school.ann)
    with pytest.raises(InvalidInput):
        accounts.set_retention_days(school.root, 0)


def test_a_learner_sending_too_fast_is_told_to_wait_and_nothing_is_stored(store, bank, school):
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]), messages_per_minute=3)
    conversation = service.start_bank_session(school.ann, CARMEN_ID)
    for _ in range(3):
        list(service.reply(conversation, "Is it 350?"))
    with pytest.raises(InvalidInput, match="more than 3 messages a minute"):
        list(service.reply(conversation, "Is it 350?"))
    assert len(service.transcript(conversation)) == 6
    other = service.start_bank_session(school.bob, CARMEN_ID)
    list(service.reply(other, "Is it 350?"))  # the limit is per learner


def test_a_backup_taken_while_messages_are_written_is_consistent(tmp_path, bank):
    store = Store(tmp_path / "tutor.db")
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    learner = store.ensure_user("writer")
    conversation = service.start_bank_session(learner, CARMEN_ID)
    list(service.reply(conversation, "Is it 350?"))
    done = threading.Event()

    def write():
        while not done.is_set():
            list(service.reply(conversation, "Is it 350?"))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for copy in range(3):
            store.backup(tmp_path / f"copy-{copy}.db")
    finally:
        done.set()
        writer.join()
    for copy in range(3):
        backup = Store(tmp_path / f"copy-{copy}.db")
        assert backup.db.execute("pragma integrity_check").fetchone()[0] == "ok"
        roles = [m.role for m in backup.messages(backup.conversation(conversation.id, learner))]
        # a moment of the conversation: turns in order, the last perhaps awaiting its reply
        assert roles and roles == (["learner", "tutor"] * len(roles))[:len(roles)]
    with pytest.raises(InvalidInput, match="already exists"):
        store.backup(tmp_path / "copy-0.db")


def test_users_and_backup_commands(tmp_path, capsys, monkeypatch):
    data = ["--data-dir", str(tmp_path)]
    assert cli(["users", "add", "tina", "--role", "teacher", "--class", "7B", *data]) == 0
    assert "one-time password:" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    assert cli(["users", "add", "leo", "--class", "7B", "--password-stdin", *data]) == 0
    assert cli(["users", "set-role", "leo", "teacher", *data]) == 0
    assert cli(["users", "disable", "leo", *data]) == 0
    assert cli(["users", "reset-password", "tina", *data]) == 0
    capsys.readouterr()
    assert cli(["users", "list", *data]) == 0
    listing = capsys.readouterr().out
    assert "tina" in listing and "leo" in listing and "disabled" in listing and "7B" in listing
    assert cli(["users", "add", "tina", *data]) == 2
    assert "already a user" in capsys.readouterr().err
    assert cli(["users", "delete", "leo", *data]) == 2  # no --yes
    assert cli(["users", "delete", "leo", "--yes", *data]) == 0
    assert cli(["backup", str(tmp_path / "copy.db"), *data]) == 0
    assert [u.name for u in Store(tmp_path / "copy.db").users()] == ["tina"]
    audit = [row["action"] for row in Store(tmp_path / "tutor.db").audit_log()]
    assert audit[0] == "delete_user" and "reset_password" in audit


# the same refusals over HTTP, as a browser meets them


def test_the_login_page_says_what_went_wrong(site, store):
    _, url, _ = site
    browser = anonymous(url)
    wrong = post_login(browser, "ann", "nope")
    assert wrong.status_code == 401 and WRONG_CREDENTIALS in wrong.text
    for _ in range(4):
        post_login(browser, "ann", "nope")
    throttled = post_login(browser, "ann", PASSWORD)
    assert throttled.status_code == 429 and "Too many failed logins" in throttled.text
    oversized = post_login(browser, "b" * 10_000, "p" * 10_000)
    assert oversized.status_code == 401 and WRONG_CREDENTIALS in oversized.text
    assert "b" * 100 in oversized.text and "b" * 101 not in oversized.text  # not echoed in full
    malformed = browser.post("/login", content=b"\xff\xfe garbage",
                             headers={"content-type": "application/x-www-form-urlencoded"})
    assert malformed.status_code in (400, 401, 403, 422)
    assert store.db["sessions"].count == 0
    assert "<script>" not in browser.get("/login", params={"reason": "<script>"}).text


def test_an_expired_session_is_sent_to_log_in_again_and_its_message_is_not_stored(site, store):
    app, url, clock = site
    ann = login(url, "ann", PASSWORD)
    tab = new_tab()
    started = call(ann, "learn", function_index(app, "learn", "on_start_bank"), [CARMEN_ID], tab)
    assert started.ok
    clock.now += timedelta(hours=2)
    before = snapshot(store)
    sent = call(ann, "learn", function_index(app, "learn", "on_send"), ["Is it 350?", None], tab)
    assert sent.status == 401 and sent.error == EXPIRED
    assert snapshot(store) == before
    page = ann.get("/learn/", headers={"accept": "text/html"})
    assert page.status_code == 303 and "reason=expired" in page.headers["location"]
    assert "expired" in ann.get(page.headers["location"]).text


def test_oversized_and_malformed_messages_are_refused_with_a_reason(site, store):
    app, url, _ = site
    ann = login(url, "ann", PASSWORD)
    tab = new_tab()
    call(ann, "learn", function_index(app, "learn", "on_start_bank"), [CARMEN_ID], tab)
    before = snapshot(store)
    for bad in ["7" * 20_000, "\x00\x01\x02", ""]:
        outcome = call(ann, "learn", function_index(app, "learn", "on_send"), [bad, None], tab)
        assert outcome.ok and outcome.outputs[0] == {"__type__": "update"}  # the chat is unchanged
    for bad in [["not", "a", "session"], {"x": 1}]:
        outcome = call(ann, "learn", function_index(app, "learn", "rate"), [bad, 1, True], tab)
        assert not outcome.ok and "Traceback" not in (outcome.error or "")
    assert snapshot(store) == before


def test_a_one_time_password_must_be_changed_before_any_page(site, store, accounts):
    _, url, _ = site
    accounts.add_user(None, "newcomer", "learner")  # one-time password
    one_time = accounts.reset_password(None, "newcomer")
    browser = anonymous(url)
    response = post_login(browser, "newcomer", one_time)
    assert response.headers["location"] == "/password"
    assert browser.get("/learn/", headers={"accept": "text/html"}).headers["location"] == "/password"
    token = form_field(browser.get("/password").text, "csrf")
    differ = browser.post("/password", data={"new": "a new password", "repeat": "another one", "csrf": token})
    assert differ.status_code == 400 and "differ" in differ.text
    changed = browser.post("/password", data={"new": "a new password", "repeat": "a new password",
                                              "csrf": token})
    assert changed.headers["location"] == "/learn/"
    assert browser.get("/learn/", headers={"accept": "text/html"}).status_code == 200


def test_the_audit_log_has_logins_failed_logins_and_password_changes_and_filters_them(accounts, store, school):
    accounts.login("ann", PASSWORD)
    for name in ("ann", "nobody-by-this-name"):
        with pytest.raises(LoginRefused):
            accounts.login(name, "not it")
    accounts.change_own_password(school.ann, "a brand new one", "a brand new one", old=PASSWORD)
    logins = [(row["actor"], row["action"], row["target"]) for row in store.audit_log(words="login")]
    assert logins == [("login form", "login_failed", "unknown name"),
                      ("login form", "login_failed", f"user:{school.ann.id}"),
                      ("ann", "login", f"user:{school.ann.id}")]
    assert "nobody-by-this-name" not in repr(store.audit_log())  # a typed name is not kept
    assert [row["action"] for row in store.audit_log(words="PASSWORD")] == ["change_password"]
    assert store.audit_log(since="2999-01-01") == []


def test_an_admin_takes_a_learner_out_of_a_class_and_their_sessions_stay(accounts, store, school):
    five_a = store.class_named("5A")
    accounts.unenrol(school.root, "5A", "ann")
    assert school.ann not in store.members(five_a) and not store.teaches(school.tom, school.ann.id)
    with pytest.raises(InvalidInput, match="not in 5A"):
        accounts.unenrol(school.root, "5A", "ann")
    with pytest.raises(AccessDenied):
        accounts.unenrol(school.tom, "5A", "bob")  # a teacher is not an admin


def test_an_admin_renames_a_class_gives_it_another_teacher_and_deletes_it_keeping_its_learners(
        accounts, store, school, bank):
    service = TutorService(store, bank, FakeBackend())
    conversation = service.start_bank_session(school.ann, CARMEN_ID)
    renamed = accounts.edit_class(school.root, "5A", "5A-maths")
    assert renamed.name == "5A-maths" and renamed.id == store.class_named("5A-maths").id
    assert [m.name for m in store.members(renamed)] == ["ann"] and store.teaches(school.tom, school.ann.id)
    with pytest.raises(InvalidInput, match="already a class named '5B'"):
        accounts.edit_class(school.root, "5A-maths", "5B")
    with pytest.raises(InvalidInput, match="not a teacher"):  # and nothing changed, the name neither
        accounts.edit_class(school.root, "5A-maths", "5A-new", teacher_name="bob")
    assert store.class_named("5A-maths").id == renamed.id
    accounts.edit_class(school.root, "5A-maths", teacher_name="tess")
    assert store.teaches(school.tess, school.ann.id) and not store.teaches(school.tom, school.ann.id)
    with pytest.raises(AccessDenied):
        accounts.delete_class(school.tom, "5A-maths")

    accounts.delete_class(school.root, "5A-maths")
    assert "5A-maths" not in [c.name for c in store.classes()] and not store.teaches(school.tess, school.ann.id)
    assert store.user_named("ann") == school.ann and store.conversations(school.ann)[0].id == conversation.id
    assert [row["action"] for row in store.audit_log(3)] == ["delete_class", "edit_class", "edit_class"]
