"""The attacks of a review of the web app, each tried again over HTTP against an in-process app:
learner-written markup in staff views, exports fetched by path, login and logout CSRF, account
probing by timing and lockout, missing security headers, look-alike names, oversized and
malformed API calls, another user's Gradio tab, deleted text left on disk. Each must now fail.
(In a browser: tests/test_browser_attacks.py.)"""

import json
import re
import statistics
import time
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher

from app import parse_args
from tests.conftest import CARMEN_ID, PASSWORD, Clock
from tests.web import (anonymous, call, form_field, function_index, login, new_tab, post_login, serving,
                       submit)
from tutor.accounts import AccountLimits, AccountService
from tutor.config import secure_cookies
from tutor.errors import InvalidInput, LoginRefused, LoginThrottled
from tutor.model.fake import FakeBackend
from tutor.service import TutorService
from tutor.storage.store import Store
from tutor.ui.access import SESSION_COOKIE
from tutor.ui.exports import PendingExports
from tutor.ui.web import LOGIN_CSRF_COOKIE, build_app

LEAK = "http://127.0.0.1:9/leak"
PAYLOADS = [f"![x]({LEAK}?c=1)", f'<img src="{LEAK}?c=2">', f'<a href="{LEAK}?c=3">click</a>',
            f"see {LEAK}?c=4 or www.example.com", "[link](javascript:alert(1))"]
HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")


# 1. learner-written text in staff views


def test_learner_markup_reaches_staff_views_only_as_text(site, store, bank, school):
    app, url, _ = site
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    own = service.start_own_session(school.ann, f'What is 12 + 30? <a href="{LEAK}?c=5">x</a> ![y]({LEAK}?c=6)')
    for payload in PAYLOADS:
        list(service.reply(own, payload))
    tom = login(url, "tom", PASSWORD)
    tab = new_tab()
    call(tom, "teach", function_index(app, "teach", "on_load"), [], tab)
    call(tom, "teach", function_index(app, "teach", "on_class"), [service.store.class_named("5A").id], tab)
    call(tom, "teach", function_index(app, "teach", "on_learner"), [school.ann.id], tab)
    shown = call(tom, "teach", function_index(app, "teach", "on_session"), [own.id], tab)
    tutor_turn = next(m for m in service.transcript(own) if m.role == "tutor")
    class_turns = [service.store.class_named("5A").id, None, "", "", "", False, False, False, ""]
    call(tom, "teach", function_index(app, "teach", "on_find"), class_turns, tab)
    context = call(tom, "teach", function_index(app, "teach", "on_turn"), [tutor_turn.id], tab)
    for markdown in (shown.outputs[0], context.outputs[0]):
        assert "leak" in markdown  # the text is there ...
        for markup in ("](", "<img", "<a ", "http://", "www.", "javascript:"):
            assert markup not in markdown  # ... but nothing Markdown or a link finder would read


# 2. exports


def test_an_export_is_downloaded_once_by_an_admin_and_by_no_one_else(site, school):
    app, url, _ = site
    root, tom, ann = (login(url, name, PASSWORD) for name in ("root", "tom", "ann"))
    tab = new_tab()
    call(root, "admin", function_index(app, "admin", "on_load"), [], tab)
    exported = call(root, "admin", function_index(app, "admin", "on_export"), ["ann"], tab)
    link = re.search(r'href="(/admin/exports/[^"]+)"', exported.outputs[-1]).group(1)
    assert not any(isinstance(o, dict) and "path" in o for o in exported.outputs)  # not in Gradio's cache
    assert anonymous(url).get(link).status_code == 401
    assert ann.get(link).status_code == 403 and tom.get(link).status_code == 403
    download = root.get(link)
    assert download.status_code == 200 and download.json()["user"]["name"] == "ann"
    assert "attachment" in download.headers["content-disposition"]
    assert root.get(link).status_code == 404  # once

    again = call(root, "admin", function_index(app, "admin", "on_export"), ["ann"], tab).outputs[-1]
    link = re.search(r'href="(/admin/exports/[^"]+)"', again).group(1)
    assert call(root, "admin", function_index(app, "admin", "on_delete"), ["ann", "ann"], tab).ok
    assert root.get(link).status_code == 404  # gone with the learner


def test_an_export_not_downloaded_is_dropped_within_minutes():
    now = [0.0]
    exports = PendingExports(keep_s=600, clock=lambda: now[0])
    key = exports.add(7, "ann.json", b"{}")
    now[0] += 601
    assert exports.take(key) is None
    other = exports.add(8, "bob.json", b"{}")
    exports.forget_user(8)
    assert exports.take(other) is None


def test_the_export_holds_every_row_that_deleting_the_user_removes(store, bank, accounts, school):
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    own = service.start_own_session(school.ann, "Ann has 4 pens and buys 3 more. How many now?")
    for conversation in (service.start_bank_session(school.ann, CARMEN_ID), own):
        replies = list(service.reply(conversation, "3 x 50 = 150"))
        service.rate(school.ann, conversation, replies[-1].message.id, -1)
        accounts.review(school.tom, replies[-1].message.id, {"correct": False}, rewrite="What is 3 x 50?")
    accounts.login("ann", PASSWORD)
    with pytest.raises(LoginRefused):
        accounts.login("ann", "nope", "10.0.0.9")
    before = _rowids(store)
    exported = accounts.export_user(school.root, "ann")
    accounts.delete_user(school.root, "ann")
    removed = before - _rowids(store)
    assert {table for table, _ in removed} >= {"feedback", "reviews", "messages", "conversations", "problems",
                                                "mastery", "enrolments", "sessions", "login_failures", "users"}
    assert {(table, row["_rowid"]) for table, rows in exported["rows"].items() for row in rows} == removed
    assert {r["rewrite"] for r in exported["rows"]["reviews"]} == {"What is 3 x 50?"}  # tom's, of her turns
    assert "password_hash" not in json.dumps(exported) and "token_hash" not in json.dumps(exported)
    assert "10.0.0.9" not in json.dumps(exported)  # where someone else tried her password from


def _rowids(store) -> set[tuple[str, int]]:
    return {(table, row[0]) for table in store.db.table_names() if not table.startswith("_")
            for row in store.db.execute(f"select rowid from {table}").fetchall()}


@pytest.mark.parametrize("removal", ["delete the learner", "purge old transcripts"])
def test_deleted_text_is_not_left_readable_in_the_database_files(tmp_path, bank, removal):
    clock = Clock()
    store = Store(tmp_path / "tutor.db")
    accounts = AccountService(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
                              clock=clock)
    learner, _ = accounts.add_user(None, "ann", "learner", PASSWORD)
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    marker = "zebra-marker-" * 4
    list(service.reply(service.start_bank_session(learner, CARMEN_ID), f"my secret {marker}"))
    files = [tmp_path / "tutor.db", tmp_path / "tutor.db-wal"]
    assert any(marker.encode() in f.read_bytes() for f in files if f.exists())
    if removal == "delete the learner":
        accounts.delete_user(None, "ann")
    else:
        accounts.set_retention_days(None, 1)
        clock.now += timedelta(days=2)
        assert accounts.apply_retention() == 1
    assert not any(marker.encode() in f.read_bytes() for f in files if f.exists())


# 3. CSRF


def test_a_login_form_posted_from_another_site_logs_no_one_in(site, store):
    _, url, _ = site
    cross_site = anonymous(url)  # no cookie of ours: SameSite=strict keeps it from a cross-site post
    refused = cross_site.post("/login", data={"name": "ann", "password": PASSWORD})
    assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies
    attacker = anonymous(url)
    stolen = form_field(attacker.get("/login").text, "csrf")  # the attacker's own token ...
    victim = anonymous(url)
    victim.cookies.set(LOGIN_CSRF_COOKIE, "the victim's own token")
    refused = victim.post("/login", data={"name": "ann", "password": PASSWORD, "csrf": stolen})
    assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies  # ... is not the victim's
    assert store.db["sessions"].count == 0


def test_logging_out_takes_a_post_with_the_sessions_token(site, store, accounts):
    _, url, _ = site
    ann = login(url, "ann", PASSWORD)
    followed = ann.get("/logout")  # an <img src=/logout> on any page
    assert followed.status_code == 200 and "Log out?" in followed.text
    assert ann.post("/logout").status_code == 403  # a form on another site has no token
    assert ann.get("/learn/", headers={"accept": "text/html"}).status_code == 200  # still logged in
    token = form_field(followed.text, "csrf")
    logged_out = ann.post("/logout", data={"csrf": token})
    assert logged_out.status_code == 303 and store.db["sessions"].count == 0
    assert ann.get("/learn/", headers={"accept": "text/html"}).status_code == 303


def test_every_cookie_is_same_site_strict_and_secure_when_asked(store, bank, accounts, school):
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    for secure in (False, True):
        with serving(build_app(service, accounts, secure_cookies=secure)) as url:
            # cookies passed by hand: a client does not send a Secure cookie over plain http
            client = anonymous(url)
            shown = client.get("/login")
            form = _cookie(shown, LOGIN_CSRF_COOKIE)
            logged_in = client.post("/login", headers={"cookie": f"{LOGIN_CSRF_COOKIE}={form}"}, data={
                "name": "ann", "password": PASSWORD, "csrf": form_field(shown.text, "csrf")})
            session = {"cookie": f"{SESSION_COOKIE}={_cookie(logged_in, SESSION_COOKIE)}"}
            page = client.get("/learn/", headers=session)
            token = form_field(client.get("/logout", headers=session).text, "csrf")
            logged_out = client.post("/logout", headers=session, data={"csrf": token})
        assert (logged_in.status_code, page.status_code, logged_out.status_code) == (303, 200, 303)
        cookies = [c for r in (shown, logged_in, page, logged_out) for c in r.headers.get_list("set-cookie")]
        assert len(cookies) == 3  # the form's token, the session, the session's end
        for cookie in cookies:
            assert "samesite=strict" in cookie.lower() and "httponly" in cookie.lower(), cookie
            assert ("; secure" in cookie.lower()) is secure, cookie


def _cookie(response: httpx.Response, name: str) -> str:
    return re.search(rf"{name}=([^;]+)", "\n".join(response.headers.get_list("set-cookie"))).group(1)


def test_secure_cookies_are_on_when_the_public_url_is_https():
    assert secure_cookies(parse_args(["--public-url", "https://tutor.school.example"]))
    assert not secure_cookies(parse_args(["--public-url", "http://localhost:7860"]))
    assert not secure_cookies(parse_args([]))
    assert secure_cookies(parse_args(["--secure-cookies"]))
    assert not secure_cookies(parse_args(["--public-url", "https://x.example", "--no-secure-cookies"]))


# 4. account probing


def test_an_unknown_name_takes_as_long_as_a_wrong_password(store, school):
    # a hasher slow enough to time (about 10 ms); before the dummy hash an unknown name took ~0
    accounts = AccountService(store, AccountLimits(name_failures=1000, address_failures=1000),
                              hasher=PasswordHasher(time_cost=3, memory_cost=8192, parallelism=1))
    accounts.add_user(None, "known", "learner", PASSWORD)
    timings = {"known": [], "unknown": []}
    for attempt in range(15):
        for name in timings:
            start = time.perf_counter()
            with pytest.raises(LoginRefused):
                accounts.login(name, "wrong password", f"10.0.{attempt}.1")
            timings[name].append(time.perf_counter() - start)
    known, unknown = (statistics.median(timings[n]) for n in ("known", "unknown"))
    assert known > 0.003  # a password hash was checked
    assert 0.7 < unknown / known < 1.4, (known, unknown)


def test_failed_logins_only_slow_an_attacker_and_never_lock_the_owner_out(store, school):
    clock = Clock()
    accounts = AccountService(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
                              clock=clock)
    for _ in range(5):
        with pytest.raises(LoginRefused):
            accounts.login("ann", "guess", "203.0.113.9")
    accounts.login("ann", PASSWORD, "198.51.100.7")  # the owner, elsewhere: not slowed at all
    waits = []
    for _ in range(8):  # the attacker's waits double, up to 15 minutes
        with pytest.raises(LoginThrottled):
            accounts.login("ann", "guess", "203.0.113.9")
        wait = accounts._throttle("ann", "203.0.113.9")
        waits.append(wait)
        clock.now += timedelta(seconds=wait + 1)
        with pytest.raises(LoginRefused):
            accounts.login("ann", "guess", "203.0.113.9")
    assert waits[:4] == pytest.approx([60, 120, 240, 480], abs=1) and max(waits) == pytest.approx(900, abs=1)
    clock.now += timedelta(minutes=15, seconds=1)
    accounts.login("ann", PASSWORD, "203.0.113.9")  # even there, the right password works after the wait


def test_failures_from_a_shared_address_do_not_slow_those_who_logged_in_from_it(store, school):
    """A school behind one NAT: one pupil spraying guesses over many names slows new names
    tried from there, never a name whose owner has logged in from there."""
    accounts = AccountService(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    school_nat = "198.51.100.1"
    accounts.login("tom", PASSWORD, school_nat)
    for number in range(25):
        with pytest.raises(LoginRefused):
            accounts.login(f"pupil{number}", "guess", school_nat)
    accounts.login("tom", PASSWORD, school_nat)  # has logged in from here: not slowed
    with pytest.raises(LoginThrottled):
        accounts.login("bob", PASSWORD, school_nat)  # never has: slowed, like the sprayer
    accounts.login("bob", PASSWORD, "192.0.2.44")  # and not elsewhere


def test_guesses_spread_over_many_addresses_are_slowed_but_not_for_the_owner_at_home(store, school):
    accounts = AccountService(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts.login("ann", PASSWORD, "192.0.2.1")  # ann at home
    for number in range(20):
        with pytest.raises(LoginRefused):
            accounts.login("ann", "guess", f"203.0.113.{number}")
    with pytest.raises(LoginThrottled, match="Try again in 60 seconds"):
        accounts.login("ann", "guess", "203.0.113.200")  # yet another address: a minute's wait
    accounts.login("ann", PASSWORD, "192.0.2.1")


def test_the_current_password_cannot_be_guessed_through_the_password_form(store, school):
    accounts = AccountService(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    for _ in range(5):
        with pytest.raises(InvalidInput, match="current password"):
            accounts.change_own_password(school.ann, "a new password", "a new password", old="guess",
                                         address="203.0.113.5")
    with pytest.raises(LoginThrottled):
        accounts.change_own_password(school.ann, "a new password", "a new password", old=PASSWORD,
                                     address="203.0.113.5")


def test_names_from_before_case_mattered_each_find_their_own_user(tmp_path):
    import sqlite_utils

    from tutor.storage.migrations import migrations

    older = sqlite_utils.Database(tmp_path / "tutor.db")
    migrations.apply(older, stop_before="m006_names_without_case")
    older["users"].insert_all([{"name": name, "role": "learner", "created": "2026-01-01"}
                               for name in ("Bob", "bob")])  # a database from before may hold both
    older.conn.close()
    store = Store(tmp_path / "tutor.db")  # the migration still applies
    assert store.user_named("bob").name == "bob" and store.user_named("Bob").name == "Bob"
    with pytest.raises(InvalidInput, match="already a user named"):
        store.create_user("BOB", "learner", None)


def test_the_first_admin_is_named_at_the_first_run(store):
    accounts = AccountService(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    created = accounts.ensure_first_admin(demo=False, admin_name="principal")
    assert [(role, name) for role, name, _ in created] == [("admin", "principal")]
    assert parse_args(["--admin-name", "principal"]).admin_name == "principal"
    assert parse_args([]).admin_name == "admin"


# 5. headers and a password page for everyone


def test_every_response_carries_the_security_headers(site):
    _, url, _ = site
    ann = login(url, "ann", PASSWORD)
    page = ann.get("/learn/")
    responses = [anonymous(url).get("/login"), anonymous(url).get("/healthz"), anonymous(url).get("/nothing"),
                 page, ann.get("/password"), anonymous(url).get("/learn/gradio_api/info")]
    for response in responses:
        for header in HEADERS:
            assert header in response.headers, (response.url, header)
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data: blob:" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy and "script-src 'self' 'nonce-" in policy
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts and all(f"nonce={nonce}" in tag for tag in scripts)  # only the page's own scripts run
    assert page.headers["x-frame-options"] == "DENY"


def test_anyone_can_change_their_password_and_their_other_sessions_end(site, store):
    _, url, _ = site
    here, elsewhere = login(url, "ann", PASSWORD), login(url, "ann", PASSWORD)
    token = form_field(here.get("/password").text, "csrf")
    wrong = here.post("/password", data={"old": "not it", "new": "a brand new one", "repeat": "a brand new one",
                                         "csrf": token})
    assert wrong.status_code == 400 and "current password" in wrong.text
    forged = here.post("/password", data={"old": PASSWORD, "new": "a brand new one", "repeat": "a brand new one"})
    assert forged.status_code == 403
    changed = here.post("/password", data={"old": PASSWORD, "new": "a brand new one", "repeat": "a brand new one",
                                           "csrf": token})
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert here.get("/learn/", headers={"accept": "text/html"}).status_code == 200  # this session stays
    assert elsewhere.get("/learn/", headers={"accept": "text/html"}).status_code == 303  # the other ended
    assert post_login(anonymous(url), "ann", PASSWORD).status_code == 401
    assert post_login(anonymous(url), "ann", "a brand new one").status_code == 303


# 6. names, bodies, calls


@pytest.mark.parametrize("name", ["ROOT", "Root", "ｒｏｏｔ", " root "])
def test_names_are_unique_whatever_their_case_or_look_alike_letters(accounts, school, name):
    with pytest.raises(InvalidInput, match="already a user named"):
        accounts.add_user(None, name, "learner", PASSWORD)


def test_a_name_in_another_script_is_refused_and_any_case_logs_in(accounts, school):
    with pytest.raises(InvalidInput, match="letters, digits"):
        accounts.add_user(None, "rооt", "learner", PASSWORD)  # Cyrillic o's
    user, _ = accounts.login("ANN", PASSWORD)
    assert user == school.ann


def test_oversized_and_malformed_api_calls_get_a_one_line_4xx(site):
    app, url, _ = site
    ann = login(url, "ann", PASSWORD)
    join = "/learn/gradio_api/queue/join"
    big = ann.post(join, content=b"{" + b" " * (2 << 20) + b"}", headers={"content-type": "application/json"})
    chunks = (b" " * (1 << 16) for _ in range(20))  # no content-length: counted as it arrives
    chunked = ann.post(join, content=chunks, headers={"content-type": "application/json"})
    bad = [ann.post(join, json={"data": [], "fn_index": 999, "session_hash": "abc"}),
           ann.post(join, json={"data": [], "fn_index": "0", "session_hash": "abc"}),
           ann.post(join, json={"data": "x", "fn_index": 0, "session_hash": "abc"}),
           ann.post(join, json={"data": [], "fn_index": 0, "session_hash": "../../x"}),
           ann.post(join, json=[1, 2]),
           ann.post("/learn/gradio_api/cancel", json={"fn_index": 0, "session_hash": "abc"}),
           ann.post("/learn/gradio_api/run/nosuch", json={"data": []}),
           ann.post(join, content=b"not json", headers={"content-type": "application/json"}),
           ann.get("/learn/gradio_api/queue/data", params={"session_hash": "x" * 500})]
    assert big.status_code == 413 and chunked.status_code == 413
    for response in [big, chunked, *bad]:
        assert 400 <= response.status_code < 500, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert post_login(anonymous(url), "a" * (1 << 20), "b").status_code == 413  # a 1 MB name is not read


def test_only_the_routes_the_pages_use_are_served(site):
    """Gradio's REST API (/run, /call), its own login and logout, monitoring and file routes
    take a session hash or a cookie the gate does not check: the pages never use them."""
    _, url, _ = site
    ann = login(url, "ann", PASSWORD)
    for method, path in [("POST", "/learn/gradio_api/run/hint"), ("POST", "/learn/gradio_api/call/hint"),
                         ("POST", "/learn/gradio_api/api/hint"), ("POST", "/learn/gradio_api/component_server"),
                         ("POST", "/learn/login"), ("GET", "/learn/logout"), ("GET", "/admin/monitoring"),
                         ("GET", "/teach/gradio_api/file=/etc/passwd"), ("GET", "/learn/gradio_api/openapi.json")]:
        response = ann.request(method, path, json={"data": [None], "session_hash": "abc"} if method == "POST" else None)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, path
        assert "set-cookie" not in response.headers
    assert ann.get("/learn/", headers={"accept": "text/html"}).status_code == 200


def test_another_login_session_cannot_use_a_tab_it_did_not_open(site, school):
    app, url, _ = site
    ann, bob = login(url, "ann", PASSWORD), login(url, "bob", PASSWORD)
    tab = new_tab()
    started = call(ann, "learn", function_index(app, "learn", "on_start_bank"), [CARMEN_ID], tab)
    assert started.ok
    read = bob.get("/learn/gradio_api/queue/data", params={"session_hash": tab})
    joined, _ = submit(bob, "learn", function_index(app, "learn", "on_new_session"), [], tab)
    beat = bob.get(f"/learn/gradio_api/heartbeat/{tab}")
    for response in (read, joined, beat):
        assert response.status_code == 403 and "another login session" in response.json()["detail"]
    ann_again = login(url, "ann", PASSWORD)  # a new login is a new session: its tabs are its own
    assert ann_again.get("/learn/gradio_api/queue/data", params={"session_hash": tab}).status_code == 403
    assert call(ann, "learn", function_index(app, "learn", "on_new_session"), [], tab).ok


def test_the_login_page_cannot_be_framed_or_sniffed(site):
    _, url, _ = site
    response = httpx.get(f"{url}/login")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "same-origin"


def test_a_learner_downloads_only_their_own_sessions(site, store, bank, school):
    _, url, _ = site
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    for learner, text in ((school.ann, "ann's own words"), (school.bob, "bob's own words")):
        list(service.reply(service.start_bank_session(learner, CARMEN_ID), text))
    ann = login(url, "ann", PASSWORD)
    text = ann.get("/learn/my-sessions.txt")
    assert text.status_code == 200 and "You: ann's own words" in text.text and "bob" not in text.text
    data = ann.get("/learn/my-sessions.json").json()
    assert [c["messages"][0]["content"] for c in data["conversations"]] == ["ann's own words"]
    assert "rows" not in data and "password_hash" not in json.dumps(data)
    assert anonymous(url).get("/learn/my-sessions.json").status_code == 401
    assert ann.get("/learn/my-sessions.csv").status_code == 404


def test_a_teachers_turns_download_as_csv_for_their_class_only_and_no_cell_runs_as_a_formula(site, store, bank, school):
    import csv
    import io

    _, url, _ = site
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    list(service.reply(service.start_bank_session(school.ann, CARMEN_ID), '=HYPERLINK("http://attacker.test","x")'))
    list(service.reply(service.start_bank_session(school.bob, CARMEN_ID), "bob's words"))
    five_a, five_b = store.class_named("5A").id, store.class_named("5B").id
    tom = login(url, "tom", PASSWORD)
    got = tom.get("/teach/turns.csv", params={"class_id": five_a, "words": "hyperlink"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    header, *rows = list(csv.reader(io.StringIO(got.text)))
    assert header[:2] == ["turn", "learner"] and [row[1] for row in rows] == ["ann"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert tom.get("/teach/turns.csv", params={"class_id": five_a, "words": "nothing like it"}).text.count("\n") == 1
    assert tom.get("/teach/turns.csv", params={"class_id": five_b}).status_code == 404  # tess's class
    assert tom.get("/teach/turns.csv", params={"class_id": five_a, "since": "yesterday"}).status_code == 400
    assert tom.get("/teach/turns.csv").status_code == 400
    assert login(url, "ann", PASSWORD).get("/teach/turns.csv", params={"class_id": five_a}).status_code == 403
    assert anonymous(url).get("/teach/turns.csv", params={"class_id": five_a}).status_code == 401
    assert [row["actor"] for row in store.audit_log(None, "export_turns")] == ["tom", "tom"]  # the two it got


def test_the_admin_downloads_the_whole_filtered_audit_log_and_no_one_else_does(site, store, school):
    import csv
    import io

    _, url, _ = site
    for _ in range(250):  # more than the page shows
        store.audit(school.root, "set_role", "user:ann", None)
    root = login(url, "root", PASSWORD)
    got = root.get("/admin/audit.csv", params={"words": "set_role"})
    header, *rows = list(csv.reader(io.StringIO(got.text)))
    assert got.status_code == 200 and header == ["at", "who", "action", "target", "detail"]
    assert len(rows) == 250 and {row[2] for row in rows} == {"set_role"}
    assert root.get("/admin/audit.csv", params={"since": "2026-13-01"}).status_code == 400
    assert login(url, "tom", PASSWORD).get("/admin/audit.csv").status_code == 403
    assert [row["actor"] for row in store.audit_log(None, "export_audit_log")] == ["root"]
