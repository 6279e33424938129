"""What stands in front of every request, outside the role gate: security headers on every
response, a limit on request bodies, only the routes of a Gradio page its browser side uses (the
queue, the heartbeat, assets: not Gradio's REST API, its own login, monitoring or file routes),
and a check that a call names an event handler that exists and carries a well-formed body, so that
bad input is a one-line 4xx, never a 500 with a traceback.

It also finds the Gradio session hash (the id a browser tab chooses for itself) a request carries,
so the gate can bind each tab to the login session that first used it: knowing another user's tab
id must not be enough to read that tab's stream.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_BODY_BYTES = 1 << 20  # a learner's message is 2,000 characters; Gradio's calls are small
API = "/gradio_api"
TAB_IN_PATH = re.compile(r"/(?:heartbeat|stream)/([^/]+)")  # /heartbeat/{hash}, /stream/{hash}/...
TAB_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
SCRIPT_TAG = re.compile(rb"<script(?=[\s>])")
TAB_STATE = "tab"  # request.state.tab: the session hash of a Gradio API call, if it has one
# what a page's browser side requests (read off every request of the browser tests), below the page's path
PAGE_ROUTES = {"", "/", "/config", "/theme.css", "/favicon.ico", "/manifest.json", "/robots.txt",
               API + "/queue/join", API + "/queue/data", API + "/cancel", API + "/info", API + "/upload"}
PAGE_ROUTE_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon", API + "/heartbeat/")


def security_headers(nonce: str | None, secure: bool, plots: bool = False) -> list[tuple[bytes, bytes]]:
    """Every response's headers. Scripts run only from the app itself (its inline ones carry this
    response's nonce), images and connections only to the app: a remote image a learner managed
    to get into a page is never fetched. No page can be framed by another site. `plots`: a page
    with Gradio's plots, which Vega draws by compiling its expressions with Function (eval):
    allowed there only; no text of a learner's reaches a plot's spec."""
    scripts = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    if plots:
        scripts += " 'unsafe-eval'"
    policy = ("default-src 'self'; "
              f"script-src {scripts}; "
              "style-src 'self' 'unsafe-inline'; "  # Svelte sets inline styles; CSS fetches obey img-src
              "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' data: blob:; "
              "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
              "frame-ancestors 'none'")
    headers = [
        ("content-security-policy", policy),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if secure:  # only worth saying when the public URL is https
        headers.append(("strict-transport-security", "max-age=31536000"))
    return [(name.encode(), value.encode()) for name, value in headers]


class Hardening:
    """Pure ASGI middleware around the whole app. `handlers`: for each page's mount path
    ("/learn"), the event handler indexes its Gradio API may be called with. `own_routes`:
    path prefixes below a page's path that the app itself serves. `plot_pages`: pages with plots."""

    def __init__(self, app, handlers: dict[str, Iterable[int]], body_limit: int = MAX_BODY_BYTES,
                 secure: bool = False, own_routes: tuple[str, ...] = (), plot_pages: tuple[str, ...] = ()):
        self.app = app
        self.plot_pages = plot_pages
        self.handlers = {path: set(indexes) for path, indexes in handlers.items()}
        self.body_limit = body_limit
        self.secure = secure
        self.own_routes = own_routes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        page = next((p for p in self.handlers if scope["path"] == p or scope["path"].startswith(p + "/")), None)
        # only a page's own HTML (Gradio's template) gets a nonce for its inline scripts
        nonce = secrets.token_urlsafe(16) if page and scope["path"] in (page, page + "/") else None
        send = _with_headers(send, security_headers(nonce, self.secure, plots=nonce is not None and page in self.plot_pages),
                             nonce)
        if page is not None and not self._served(scope["path"], page):
            return await _refuse(scope, receive, send, 404, "Not found.")
        declared = _content_length(scope)
        if declared is not None and declared > self.body_limit:
            return await _refuse(scope, receive, send, 413, self._too_large())
        body = b""
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body, complete = await _read_body(receive, self.body_limit)
            if not complete:
                return await _refuse(scope, receive, send, 413, self._too_large())
            receive = _replay(body, receive)
        if page is not None and scope["path"].startswith(page + API + "/"):
            problem, tab = self._check_api_call(scope, page, body)
            if problem:
                return await _refuse(scope, receive, send, problem[0], problem[1])
            if tab is not None:
                scope.setdefault("state", {})[TAB_STATE] = tab
        await self.app(scope, receive, send)

    def _served(self, path: str, page: str) -> bool:
        route = path[len(page):]
        return (route in PAGE_ROUTES or route.startswith(PAGE_ROUTE_PREFIXES)
                or path.startswith(self.own_routes))

    def _too_large(self) -> str:
        return f"The request is too large (at most {self.body_limit // 1024} KiB)."

    def _check_api_call(self, scope, page: str, body: bytes) -> tuple[tuple[int, str] | None, str | None]:
        """(status and message if refused, the tab's session hash if the call names one)."""
        route = scope["path"][len(page + API):]
        tabs = [match.group(1) for match in [TAB_IN_PATH.match(route)] if match]
        tabs += Request(scope).query_params.getlist("session_hash")
        if scope["method"] == "POST" and route.rstrip("/") in ("/queue/join", "/cancel"):
            try:
                call = json.loads(body or b"null")
            except ValueError:
                return (400, "The request body is not valid JSON."), None
            if not isinstance(call, dict):
                return (400, "The request body must be a JSON object."), None
            index = call.get("fn_index")
            if type(index) is not int or index not in self.handlers[page]:
                return (422, "There is no such event handler on this page."), None
            if route.startswith("/queue/join") and not isinstance(call.get("data"), list):
                return (422, "The call's data must be a list of inputs."), None
            if route.startswith("/cancel") and not isinstance(call.get("event_id"), str):
                return (422, "A cancel names the event it cancels."), None
            if call.get("session_hash") is not None:
                tabs.append(call["session_hash"])
        if any(not isinstance(tab, str) or not TAB_PATTERN.fullmatch(tab) for tab in tabs):
            return (422, "A session hash is 1 to 64 letters, digits, '_' or '-'."), None
        if len(set(tabs)) > 1:
            return (422, "A call names one session hash."), None
        return None, tabs[0] if tabs else None


class TabOwners:
    """Which login session first used each Gradio session hash (most recent `capacity` tabs)."""

    def __init__(self, capacity: int = 100_000):
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def claim(self, tab: str, owner: str) -> bool:
        """True if `owner` may use `tab`: it is theirs already, or nobody's yet (now theirs)."""
        known = self._owners.get(tab)
        if known is None:
            self._owners[tab] = owner
            if len(self._owners) > self._capacity:
                self._owners.popitem(last=False)
            return True
        self._owners.move_to_end(tab)
        return secrets.compare_digest(known, owner)


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive, limit: int) -> tuple[bytes, bool]:
    """The whole body, or (what was read, False) as soon as it passes `limit` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive) -> Callable[[], Awaitable[dict]]:
    """A receive that gives the already-read body once, then listens for the disconnect."""
    sent = False

    async def again() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return again


def _with_headers(send, headers: list[tuple[bytes, bytes]], nonce: str | None):
    """Add the security headers to the response; give the inline scripts of a page's HTML the
    nonce its policy names (an HTML body is small and sent whole, so it is rewritten at once)."""
    state: dict = {}

    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            existing = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = list(message.get("headers", [])) + [
                (name, value) for name, value in headers if name not in existing]
            kind = dict(message["headers"]).get(b"content-type", b"")
            if nonce and kind.startswith(b"text/html"):
                state["start"], state["body"] = message, []
                return
            return await send(message)
        if message["type"] == "http.response.body" and "start" in state:
            state["body"].append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = SCRIPT_TAG.sub(b"<script nonce=" + nonce.encode(), b"".join(state["body"]))
            start = state.pop("start")
            start["headers"] = [(name, value) for name, value in start["headers"]
                                if name.lower() != b"content-length"]
            start["headers"].append((b"content-length", str(len(body)).encode()))
            await send(start)
            return await send({"type": "http.response.body", "body": body, "more_body": False})
        await send(message)
    return sending


async def _refuse(scope, receive, send, status: int, message: str) -> None:
    await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)
