"""Every event handler of every page, called over HTTP as each kind of caller.

A call a role may not make must fail and change nothing in the database. The table below names
who may call each handler; a handler the table does not know fails the test, so a new endpoint
cannot land without saying (and showing) who may call it.
"""

from dataclasses import dataclass, field

import gradio as gr
import pytest
from gradio_client import Client

from tests.conftest import CARMEN_ID, PASSWORD
from tests.test_retrieval import BagOfWords
from tests.web import anonymous, call, function_index, login, new_tab, serving
from tutor.config import DIALOGUES_FILE
from tutor.domain.dialogues import read_dialogues
from tutor.model.fake import FakeBackend
from tutor.model.retrieval import Retrieval
from tutor.rounds import Rounds
from tutor.service import TutorService
from tutor.training.runs import round_config
from tutor.ui.access import allow, check_every_handler
from tutor.ui.web import build_app

CALLERS = ("anonymous", "ann", "bob", "tom", "tess", "root")
EVERYONE = {"ann", "bob", "tom", "tess", "root"}  # logged in, any role


@dataclass
class Rule:
    args: list
    allowed: set[str]
    before: list = field(default_factory=list)  # (handler, args) run first in the caller's tab
    event_data: dict | None = None


def rules(ids) -> dict[tuple[str, str], Rule]:
    """Who may call what: ann (learner, class 5A, taught by tom), bob (learner, 5B, taught by
    tess), root (admin). Ann's conversation, class and id are the targets."""
    start = ("on_start_bank", [CARMEN_ID])
    similar = ("on_find_similar", [CARMEN_ID, None])
    to_ann = [("on_load", []), ("on_class", [ids.class_5a]), ("on_learner", [ids.ann])]
    find = [ids.class_5a, None, "", "", "", False, False, False, ""]  # class 5A's turns, unfiltered
    to_turns = [("on_load", []), ("on_find", find)]
    return {
        ("learn", "links"): Rule([], EVERYONE),
        ("learn", "on_load"): Rule([None], EVERYONE),
        ("learn", "on_start_bank"): Rule([CARMEN_ID], EVERYONE),
        ("learn", "on_start_own"): Rule(["What is 12 + 30?"], EVERYONE),
        ("learn", "on_open_session"): Rule([ids.conversation], {"ann"}, [("on_load", [None])]),
        ("learn", "on_new_session"): Rule([], EVERYONE),
        ("learn", "on_send"): Rule(["I think it is 350", None], EVERYONE, [start]),
        ("learn", "on_hint"): Rule([None], EVERYONE, [start]),
        ("learn", "on_another_way"): Rule([None], EVERYONE, [start, ("on_send", ["I think it is 350", None])]),
        ("learn", "on_stop"): Rule([None], EVERYONE, [start]),
        ("learn", "on_find_similar"): Rule([CARMEN_ID, None], EVERYONE),
        ("learn", "<lambda>"): Rule([ids.similar], EVERYONE, [similar]),
        ("learn", "on_like"): Rule([None], EVERYONE, [start, ("on_send", ["Is it 350?", None])],
                                   {"index": 2, "value": "", "liked": False}),  # the opening line is 0
        ("learn", "rate"): Rule([ids.conversation, 1, False], {"ann"}),
        # the session and the turn come from the tab's own state (a 👎 given there): none here
        ("learn", "on_comment"): Rule([None, None, "It gave the answer away."], EVERYONE),
        ("learn", "on_skip_comment"): Rule([], EVERYONE),
        ("teach", "links"): Rule([], {"tom", "tess", "root"}),
        ("teach", "on_load"): Rule([], {"tom", "tess", "root"}),
        ("teach", "on_class"): Rule([ids.class_5a], {"tom", "root"}, to_ann[:1]),
        ("teach", "on_learner"): Rule([ids.ann], {"tom", "root"}, to_ann[:2]),
        ("teach", "on_session"): Rule([ids.conversation], {"tom", "root"}, to_ann),
        ("admin", "links"): Rule([], {"root"}),
        ("admin", "on_load"): Rule([], {"root"}),
        ("admin", "on_add"): Rule(["newbie", "learner", ""], {"root"}),
        ("admin", "on_set_role"): Rule(["zed", "learner"], {"root"}, [("on_load", [])]),
        ("admin", "on_disable"): Rule(["zed"], {"root"}, [("on_load", [])]),
        ("admin", "on_enable"): Rule(["zed"], {"root"}, [("on_load", [])]),
        ("admin", "on_reset"): Rule(["zed"], {"root"}, [("on_load", [])]),
        ("admin", "on_create_class"): Rule(["6C", ""], {"root"}),
        ("admin", "on_enrol"): Rule(["5A", "zed"], {"root"}, [("on_load", [])]),
        ("admin", "on_unenrol"): Rule(["5A", "zed"], {"root"}, [("on_load", []), ("on_enrol", ["5A", "zed"])]),
        ("admin", "on_class_picked"): Rule(["5A"], {"root"}, [("on_load", [])]),
        ("admin", "on_save_class"): Rule(["5A", "5A", "tom"], {"root"}, [("on_load", [])]),
        ("admin", "on_delete_class"): Rule(["6D", "6D"], {"root"}, [("on_create_class", ["6D", ""])]),
        ("admin", "on_export"): Rule(["zed"], {"root"}, [("on_load", [])]),
        ("admin", "on_delete"): Rule(["zed", "zed"], {"root"}, [("on_load", [])]),
        ("admin", "on_save_retention"): Rule([30], {"root"}),
        ("admin", "on_audit"): Rule(["login", ""], {"root"}),
        ("admin", "on_user_search"): Rule(["ann"], {"root"}),
        ("admin", "on_tab"): Rule([], {"root"}),
        ("admin", "on_purge"): Rule([], {"root"}),
        ("admin", "on_model"): Rule([], {"root"}),
        ("admin", "on_load_schedule"): Rule([], {"root"}),
        ("admin", "on_save_schedule"): Rule(["kto", 7, None], {"root"}),
        ("admin", "on_plan"): Rule(["dpo", True, False, False], {"root"}),
        ("admin", "on_start"): Rule(["dpo", True, False, False, True], {"root"}),
        ("admin", "on_cancel"): Rule([], {"root"}),  # the round root just started
        ("admin", "on_promote"): Rule([], {"root"}),
        ("admin", "on_rollback"): Rule([], {"root"}),
        ("teach", "on_find"): Rule(find, {"tom", "root"}, to_ann[:1]),
        ("teach", "on_turn"): Rule([ids.tutor_turn], {"tom", "root"}, to_turns),
        ("teach", "on_review"): Rule([ids.tutor_turn, "yes", "no", "—", "—", "focus", "Which bids came first?",
                                      *find], {"tom", "root"}, to_turns),
        ("teach", "on_turn_row"): Rule([], {"tom", "tess", "root"}, event_data={
            "index": [0, 0], "value": ids.tutor_turn, "row_value": [ids.tutor_turn], "col_value": [ids.tutor_turn],
            "selected": True}),
        ("teach", "on_policy"): Rule([ids.class_5a, 2, None], {"tom", "root"}, to_ann[:1]),
    }


def candidate_ready(store, models):
    """v1 serving, v2 a round's candidate that passed the gate (adapters are never loaded: the
    fake student only takes the version's name)."""
    from tutor.model.registry import Registry

    registry = Registry(models, store)
    for version in ("v1", "v2"):
        (models / version).mkdir(parents=True)
        (models / version / "adapter_config.json").write_text("{}")
    registry.register("v1", {"base": "fake"}, alias="champion")
    registry.register("v2", {"base": "fake"}, alias="candidate")
    run = store.create_training_run("dpo", {})
    store.update_training_run(run.id, status="done", version="v2", gate={"passed": True, "rows": [], "champion": "v1", "candidate": "v2"})
    return registry


@pytest.fixture
def web(store, bank, accounts, school, tmp_path):
    retrieval = Retrieval(BagOfWords(), list(read_dialogues(DIALOGUES_FILE))[:20], list(bank),
                          progress=lambda _: None)
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]), retrieval=retrieval)
    accounts.add_user(None, "zed", "learner", PASSWORD)
    conversation = service.start_bank_session(school.ann, CARMEN_ID)
    tutor_turn = list(service.reply(conversation, "I think it is 350"))[-1].message
    ids = type("Ids", (), {
        "conversation": conversation.id, "ann": school.ann.id, "tutor_turn": tutor_turn.id,
        "class_5a": store.class_named("5A").id,
        "similar": service.similar_problems(bank.get(CARMEN_ID).question, exclude_id=CARMEN_ID)[0].id,
    })
    rounds = Rounds(service, accounts, candidate_ready(store, tmp_path / "models"), tmp_path / "data",
                    round_config(base=str(tmp_path / "no-model")))
    app = build_app(service, accounts, rounds=rounds)
    with serving(app) as url:
        yield app, url, ids


def snapshot(store) -> dict:
    """Every row of every table, but sessions (a request refreshes its session's last_seen)."""
    tables = [t for t in store.db.table_names() if t not in ("sessions", "_tutor_migrations")]
    return {t: sorted(map(repr, store.db[t].rows)) for t in tables}


def test_every_endpoint_refuses_every_caller_it_should_and_changes_nothing(web, store):
    app, url, ids = web
    table = rules(ids)
    served = {(page, fn.name) for page, blocks in app.state.pages.items()
              for fn in blocks.fns.values() if fn.fn is not None}
    assert served == set(table), f"endpoints without a rule: {served - set(table)}"

    clients = {name: anonymous(url) if name == "anonymous" else login(url, name, PASSWORD)
               for name in CALLERS}
    refused_calls = 0
    for (page, handler), rule in table.items():
        index = function_index(app, page, handler)
        for caller in sorted(set(CALLERS) - rule.allowed):
            tab = new_tab()
            for setup, args in rule.before:
                call(clients[caller], page, function_index(app, page, setup), args, tab)
            before = snapshot(store)
            outcome = call(clients[caller], page, index, rule.args, tab, rule.event_data)
            assert outcome.status in (401, 403) or not outcome.ok, (page, handler, caller, outcome)
            assert snapshot(store) == before, (page, handler, caller)
            refused_calls += 1
        for caller in sorted(rule.allowed):
            tab = new_tab()
            for setup, args in rule.before:
                assert call(clients[caller], page, function_index(app, page, setup), args, tab).ok
            outcome = call(clients[caller], page, index, rule.args, tab, rule.event_data)
            assert outcome.status == 200 and outcome.ok, (page, handler, caller, outcome)
    assert refused_calls > 80


def test_what_a_teacher_sees_is_their_own_class(web):
    app, url, ids = web
    tess = login(url, "tess", PASSWORD)
    loaded = call(tess, "teach", function_index(app, "teach", "on_load"), [])
    assert [label for label, _ in loaded.outputs[0]["choices"]] == ["5B"]
    admin = login(url, "root", PASSWORD)
    loaded = call(admin, "teach", function_index(app, "teach", "on_load"), [])
    assert [label for label, _ in loaded.outputs[0]["choices"]] == ["5A", "5B"]


def test_a_learner_cannot_open_another_page(web):
    _, url, _ = web
    ann = login(url, "ann", PASSWORD)
    for page in ("/teach/", "/admin/"):
        response = ann.get(page, headers={"accept": "text/html"})
        assert response.status_code == 403 and "Not your page" in response.text
        assert ann.get(f"{page}config").status_code == 403
    assert ann.get("/learn/", headers={"accept": "text/html"}).status_code == 200
    assert ann.get("/learn/config").json()["username"] == "ann"  # Gradio knows who passed the gate


def test_anonymous_clients_get_no_endpoint_list(web):
    _, url, _ = web
    with pytest.raises(Exception, match="credentials|log in|login"):
        Client(f"{url}/learn/", verbose=False)
    visitor = anonymous(url)
    for page in ("learn", "teach", "admin"):
        for path in ("config", "gradio_api/info", "gradio_api/openapi.json"):
            response = visitor.get(f"/{page}/{path}")
            assert response.status_code in (401, 404)  # not logged in, or a route the pages do not serve
            assert "dependencies" not in response.text and "on_send" not in response.text
        page_request = visitor.get(f"/{page}/", headers={"accept": "text/html"})
        assert page_request.status_code == 303 and page_request.headers["location"].startswith("/login")


def test_uploads_are_refused(web):
    _, url, _ = web
    ann = login(url, "ann", PASSWORD)
    response = ann.post("/learn/gradio_api/upload", files={"files": ("x.txt", b"hello")})
    assert response.status_code == 403 and "Uploads are off" in response.text


def test_a_page_with_an_unchecked_handler_is_refused(accounts):
    with gr.Blocks() as page:
        box = gr.Textbox()
        box.submit(allow(accounts, "learner")(lambda user, text: text), box, box)
    check_every_handler(page)
    with page:
        box.change(lambda text: text, box, box)  # no @allow
    with pytest.raises(RuntimeError, match="does not check its caller"):
        check_every_handler(page)
