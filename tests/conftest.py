from datetime import datetime, timezone

import pytest

from tutor.config import PROBLEMS_FILE
from tutor.domain.problems import Problem, ProblemBank
from tutor.model.fake import FakeBackend
from tutor.model.loading import MODEL_LOADS
from tutor.service import TutorService
from tutor.storage.store import Store

CARMEN_ID = "6000044"  # a bank problem: Carmen's auction, answer 500
FIRST_REPLY = "How did you get 350?"
SECOND_REPLY = "How much do the other people's bids add to the desk's cost?"


@pytest.fixture(autouse=True)
def no_model_load_outlives_its_test():
    """A test's background loads (a judge or sentence model warmed in a thread) end with the
    test: a later test's own from_pretrained in the main thread must not run beside them."""
    yield
    with MODEL_LOADS:
        pass


@pytest.fixture
def store():
    """A fresh in-memory database per test."""
    return Store(None)


@pytest.fixture(scope="session")
def bank():
    return ProblemBank.load(PROBLEMS_FILE)


@pytest.fixture
def fake_backend():
    # a first reply that carries the turn after a wrong 350 (the mistake named by a question), and
    # a second that carries the focus hint on the first step
    return FakeBackend([FIRST_REPLY, SECOND_REPLY])


@pytest.fixture
def service(store, bank, fake_backend):
    return TutorService(store, bank, fake_backend)


@pytest.fixture
def apples():
    return Problem("apples-1", "Tom has 3 apples and buys 5 more. How many does he have now?", "8",
                   ("3 + 5 = 8",))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_judge(tmp_path_factory):
    """A judge trained two steps on a 2-layer random encoder: model code, not figures."""
    import json

    from tests.tiny_model import build_tiny_encoder
    from tutor.judge.data import build_rows
    from tutor.judge.model import Judge
    from tutor.judge.train import JudgeSettings, train_judge

    base = build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))
    rows, _ = build_rows(mathdial_limit=20)
    out = tmp_path_factory.mktemp("judges") / "j1"
    train_judge(rows[:64], out, JudgeSettings(max_steps=2, batch_size=8, lora_rank=4), base=base)
    (out / "manifest.json").write_text(json.dumps({"base_path": str(base)}), encoding="utf-8")
    return Judge(out)




def fast_hasher():
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def accounts(store):
    from tutor.accounts import AccountService

    return AccountService(store, hasher=fast_hasher())


PASSWORD = "correct horse battery"


@pytest.fixture
def school(accounts):
    """Two classes: ann (learner) with teacher tom in 5A; bob (learner) with teacher tess in 5B;
    and an admin. Every password is PASSWORD."""
    from types import SimpleNamespace

    people = {}
    for name, role, class_name in [("root", "admin", None), ("tom", "teacher", "5A"),
                                   ("tess", "teacher", "5B"), ("ann", "learner", "5A"),
                                   ("bob", "learner", "5B")]:
        people[name], _ = accounts.add_user(None, name, role, PASSWORD, class_name=class_name)
    return SimpleNamespace(**people)


class Clock:
    """A clock a test moves by hand (`clock.now += timedelta(...)`)."""

    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture
def site(store, bank, school):
    """The whole web app served on loopback, over the school's accounts, sessions ending after
    an idle hour of `clock`: (app, url, clock)."""
    from tests.web import serving
    from tutor.accounts import AccountLimits, AccountService
    from tutor.ui.web import ServerLimits, build_app

    clock = Clock()
    accounts = AccountService(store, AccountLimits(session_hours=1), hasher=fast_hasher(), clock=clock)
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    app = build_app(service, accounts, ServerLimits(messages_per_minute=100))
    with serving(app) as url:
        yield app, url, clock
