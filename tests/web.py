"""Serve the whole web app in-process, log in over HTTP, and call any event handler the way a
browser (or an attacker) does: straight through Gradio's queue, by its function index."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from tutor.ui.access import SESSION_COOKIE


@contextlib.contextmanager
def serving(app: FastAPI):
    """Run `app` on a free loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def login(url: str, name: str, password: str) -> httpx.Client:
    """An HTTP client holding the session cookie of a successful login."""
    client = httpx.Client(base_url=url, timeout=30)
    response = post_login(client, name, password)
    assert response.status_code == 303, response.text
    assert SESSION_COOKIE in client.cookies
    return client


def post_login(client: httpx.Client, name: str, password: str, **fields) -> httpx.Response:
    """Post the login form the way a browser does: with the token of the form it was shown."""
    return client.post("/login", data={"name": name, "password": password,
                                       "csrf": form_field(client.get("/login").text, "csrf"), **fields})


def form_field(page: str, name: str) -> str:
    """The value of a hidden field of an HTML form."""
    match = re.search(rf'name={name} value="([^"]*)"', page) or re.search(
        rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no field {name} on the page"
    return match.group(1)


def anonymous(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30)


@dataclass
class Outcome:
    status: int  # HTTP status of the join (200: the call reached the queue)
    ok: bool  # the handler completed without an error
    outputs: list | None  # the last outputs it sent
    error: str | None  # the error text shown to the caller
    streamed: int = 0  # outputs sent before the last


def call(client: httpx.Client, page: str, fn_index: int, data: list, tab: str | None = None,
         event_data: dict | None = None, timeout: float = 60) -> Outcome:
    """Run event handler `fn_index` of the page mounted at /`page` with `data` as its inputs.

    `tab` is Gradio's session hash: calls from the same tab share its server-side gr.State
    (which the server keeps; a value sent for a State input is ignored)."""
    joined, updates = submit(client, page, fn_index, data, tab or new_tab(), event_data, timeout)
    if joined.status_code != 200:
        return Outcome(joined.status_code, False, None, _detail(joined))
    streamed, outputs = 0, None
    with updates as events:
        for event in events:
            if event.get("msg") == "process_generating":
                streamed += 1
                outputs = event["output"].get("data")
            if event.get("msg") == "process_completed":
                output = event.get("output") or {}
                ok = bool(event.get("success"))
                return Outcome(200, ok, output.get("data", outputs),
                               None if ok else (output.get("error") or "error"), streamed)
    return Outcome(200, False, outputs, "the stream ended without completing", streamed)


def submit(client: httpx.Client, page: str, fn_index: int, data: list, tab: str,
           event_data: dict | None = None, timeout: float = 60):
    """Join Gradio's queue: (the join's response, a context manager yielding the call's events
    as they arrive, for a caller that acts mid-call)."""
    joined = client.post(f"/{page}/gradio_api/queue/join", json={
        "data": data, "fn_index": fn_index, "session_hash": tab, "event_data": event_data,
        "trigger_id": None,
    })

    @contextlib.contextmanager
    def events():
        with client.stream("GET", f"/{page}/gradio_api/queue/data", params={"session_hash": tab},
                           timeout=timeout) as response:
            yield (json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:"))

    return joined, events()


def new_tab() -> str:
    return uuid.uuid4().hex[:11]


def function_index(app: FastAPI, page: str, name: str) -> int:
    """The fn_index of the handler called `name` on a page."""
    for index, block_function in app.state.pages[page].fns.items():
        if block_function.name == name:
            return index
    raise KeyError(f"no handler {name} on {page}")


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text
