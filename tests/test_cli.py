import io
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import CARMEN_ID
from tutor.cli import main
from tutor.config import Settings
from tutor.bootstrap import open_store
from tutor.model.fake import FakeBackend
from tutor.service import TutorService

ROOT = Path(__file__).resolve().parents[1]


def run_tutor(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tutor", *args], input=stdin, capture_output=True, text=True,
        cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300,
    )


def test_chat_answers_each_stdin_line_through_the_service(tmp_path):
    result = run_tutor("chat", "--problem", CARMEN_ID, "--student-model", "fake",
                       "--data-dir", str(tmp_path), stdin="Is it 350?\n\nI added 200 and 150.\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Problem {CARMEN_ID}: Carmen goes to an auction")
    # the fake's canned question names no mistake: the planner's own words carry the turn
    assert lines[1] == "tutor> How did you get 350?"
    assert "not sent: Your message is empty" in result.stdout
    assert lines[-1].startswith("tutor> ") and "What do you think the first step is?" not in lines[-1]

    store = open_store(Settings(data_dir=tmp_path))
    (conversation,) = store.conversations(store.ensure_user("local-learner"))
    messages = store.messages(conversation)
    assert [m.role for m in messages] == ["learner", "tutor"] * 2
    assert [f"tutor> {m.content}" for m in messages if m.role == "tutor"] == [lines[1], lines[-1]]



def test_chat_prints_exactly_what_passed_and_never_takes_text_back(store, bank, monkeypatch, capsys):
    # a student that praises a wrong value after a first sentence that passes
    service = TutorService(store, bank, FakeBackend(["Not quite, 350 isn't right. Yes, you're right!",
                                                     "How did you get 350?",
                                                     "Yes, you're right! What do Carmen's own 3 bids add?"]))
    monkeypatch.setattr("tutor.cli.chat.open_service", lambda settings, progress: service)
    monkeypatch.setattr("sys.stdin", io.StringIO("I think the desk costs $350.\n3 x 50 = 150\n"))
    assert main(["chat", "--problem", CARMEN_ID, "--student-model", "fake"]) == 0
    printed = [line.removeprefix("tutor> ") for line in capsys.readouterr().out.splitlines()[1:]]
    (conversation,) = service.sessions(service.local_learner())
    shown = [m.content for m in service.transcript(conversation) if m.role == "tutor"]
    assert printed == shown  # a reply only grows: the terminal shows exactly what was stored
    # the praise never shows: the next (fresh) try is the fake's next reply, which passes
    assert shown[0] == "How did you get 350?"
    assert shown[1] == "Yes, you're right! What do Carmen's own 3 bids add?"  # the right value is not doubted

def test_data_dir_comes_from_the_environment(tmp_path):
    result = run_tutor("init", "--student-model", "fake", env={"TUTOR_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tutor.db").exists()


def test_unknown_problem_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    code = main(["chat", "--problem", "nope", "--student-model", "fake", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "No problem with id 'nope'" in capsys.readouterr().err


def test_app_help_lists_the_settings():
    result = subprocess.run([sys.executable, "app.py", "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    for flag in ("--host", "--port", "--data-dir", "--student-model", "--adapter", "--teacher"):
        assert flag in result.stdout
