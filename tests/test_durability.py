"""Kill the real server (SIGKILL) while the tutor is replying, 20 times in a row: every learner
message the browser saw acknowledged is in the database after each restart."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import CARMEN_ID, PASSWORD
from tests.web import call, login, new_tab, submit
from tutor.config import PROJECT_ROOT
from tutor.storage.store import Store

KILLS = 20


def test_acknowledged_messages_survive_twenty_kills_mid_reply(tmp_path):
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "tutor", "users", "add", "ann", "--role", "learner",
                    "--password-stdin", "--data-dir", str(data_dir)],
                   input=PASSWORD + "\n", text=True, check=True, cwd=PROJECT_ROOT, capture_output=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    acknowledged: list[tuple[int, str]] = []  # (conversation, learner text) the learner saw taken

    for attempt in range(KILLS):
        server = _start(data_dir, port, tmp_path / f"server-{attempt}.log")
        try:
            client = login(url, "ann", PASSWORD)
            endpoints = _endpoints(client)
            tab = new_tab()
            started = call(client, "learn", endpoints["start_problem"], [CARMEN_ID], tab)
            conversation_id = started.outputs[3]["value"]
            # a whole turn, then a second message killed as soon as it is acknowledged
            first = f"Attempt {attempt}: is it 350?"
            assert call(client, "learn", endpoints["send"], [first, None], tab).ok
            acknowledged.append((conversation_id, first))
            second = f"Attempt {attempt}: I think 3 x 50 = 150."
            if _send_until_acknowledged(client, endpoints["send"], second, tab):
                acknowledged.append((conversation_id, second))
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()

        stored = _learner_messages(data_dir)
        missing = [pair for pair in acknowledged if pair not in stored]
        assert not missing, f"after kill {attempt + 1}: lost {missing}"
    assert len(acknowledged) == 2 * KILLS


def _send_until_acknowledged(client: httpx.Client, send: int, text: str, tab: str) -> bool:
    """Send `text`; True once the page shows it as sent (the first streamed update), which is
    when the test pulls the plug: the tutor is still writing."""
    joined, updates = submit(client, "learn", send, [text, None], tab)
    assert joined.status_code == 200
    with updates as events:
        for event in events:
            if event.get("msg") == "process_generating":
                chat = event["output"]["data"][0]
                texts = [part["text"] for message in chat for part in message["content"]]
                assert text in texts  # the learner sees their message in the chat
                return True
            assert event.get("msg") != "process_completed", event  # it must still be streaming
    return False


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    # 0.1 s a word: the tutor is mid-reply for about a second after acknowledging
    server = subprocess.Popen(
        [sys.executable, "app.py", "--student-model", "fake:0.1", "--data-dir", str(data_dir),
         "--port", str(port), "--no-demo", "--messages-per-minute", "1000"],
        cwd=PROJECT_ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"the server did not start:\n{log.read_text()}")


def _endpoints(client: httpx.Client) -> dict[str, int]:
    config = client.get("/learn/config").json()
    return {d["api_name"]: d["id"] for d in config["dependencies"]}


def _learner_messages(data_dir: Path) -> set[tuple[int, str]]:
    store = Store(data_dir / "tutor.db")
    rows = store.db.query("select conversation_id, content from messages where role = 'learner'")
    return {(row["conversation_id"], row["content"]) for row in rows}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
