"""The web app: a login page, then one Gradio page per role, all behind one gate.

/login, /password, /logout are plain HTML forms (they must work before anyone is known), each
posted with a CSRF token: the login form's is a cookie of its own (double submit), the others'
is derived from the session (tutor.ui.access.form_token); logging out takes a POST.
/learn/, /teach/, /admin/ are Gradio Blocks. The gate in front of them turns away anyone without
a live session (a page request goes to /login, an API call gets 401 and no endpoint list), anyone
whose role does not open that page (403), every upload, and a Gradio tab id another login session
uses. Each event handler checks its caller again (tutor.ui.access): the gate is the outer wall,
not the only one. Outside the gate, tutor.ui.hardening adds the security headers to every
response, limits request bodies and refuses malformed API calls.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tutor.accounts import AccountService, token_hash
from tutor.errors import AccessDenied, InvalidInput, LoginRefused, LoginThrottled, NotFound
from tutor.rounds import Rounds
from tutor.service import TutorService
from tutor.storage.store import User
from tutor.ui.access import SESSION_COOKIE, check_every_handler, form_token
from tutor.ui.admin import AUDIT_COLUMNS, AUDIT_CSV, EXPORTS_PATH, audit_rows, build_admin_page
from tutor.ui.exports import PendingExports, as_csv
from tutor.ui.hardening import MAX_BODY_BYTES, TAB_STATE, Hardening, TabOwners
from tutor.ui.learner import CSS as LEARNER_CSS
from tutor.ui.learner import OWN_EXPORT, build_learner_page, transcripts_as_text
from tutor.ui.navigation import PAGES
from tutor.ui.teacher import TURN_COLUMNS, TURNS_CSV, TurnQuery, build_teacher_page, find_turns, parse_day, turn_table

log = logging.getLogger(__name__)

LOGIN_CSRF_COOKIE = "tutor_login_csrf"
NAME_SHOWN_CHARS = 100  # a name typed into the login form is shown back at most this long
FORM_EXPIRED = "This form has expired. Please try again."
CSV = "text/csv; charset=utf-8"

HOME = {"learner": "/learn/", "teacher": "/teach/", "admin": "/admin/"}
REASONS = {  # /login?reason=... : fixed texts, so no one can put words on the page through a link
    "expired": "Your session has expired. Please log in again.",
    "login": "Please log in.",
    "logged-out": "You have logged out.",
    "password-changed": "Password changed.",
}


@dataclass(frozen=True)
class ServerLimits:
    concurrency: int = 4  # tutor turns generated at once (per page)
    queue_size: int = 64  # waiting events per page; beyond it a request is refused at once
    messages_per_minute: int = 12  # per learner
    body_bytes: int = MAX_BODY_BYTES  # largest request body


def build_app(service: TutorService, accounts: AccountService, limits: ServerLimits = ServerLimits(),
              rounds: Rounds | None = None, secure_cookies: bool = False) -> FastAPI:
    """`rounds` None: no RLHF rounds here (a student that is not a local model).
    `secure_cookies`: cookies only over https (the app is served behind TLS)."""
    service.messages_per_minute = limits.messages_per_minute
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    exports = PendingExports()
    pages = {
        "learn": build_learner_page(service, accounts),
        "teach": build_teacher_page(service, accounts),
        "admin": build_admin_page(service, accounts, rounds, exports),
    }
    roles_by_path = {f"/{path}": roles for path, _, roles in PAGES}
    tabs = TabOwners()
    cookie = {"httponly": True, "samesite": "strict", "secure": secure_cookies}

    @app.middleware("http")
    async def gate(request: Request, call_next):
        path = request.url.path
        page = next((p for p in roles_by_path if path == p or path.startswith(p + "/")), None)
        if page is None:
            return await call_next(request)
        if "/upload" in path[len(page):]:
            return JSONResponse({"detail": "Uploads are off."}, status_code=403)
        try:
            user = await run_in_threadpool(accounts.session_user, request.cookies.get(SESSION_COOKIE))
        except AccessDenied as refused:
            if _wants_page(request):
                reason = "expired" if "expired" in str(refused) else "login"
                return RedirectResponse(f"/login?reason={reason}&next={quote(path)}", status_code=303)
            return JSONResponse({"detail": str(refused)}, status_code=401)
        if user.must_change_password:
            if _wants_page(request):
                return RedirectResponse("/password", status_code=303)
            return JSONResponse({"detail": "Change your one-time password first."}, status_code=403)
        if user.role not in roles_by_path[page]:
            if _wants_page(request):
                return HTMLResponse(_not_yours(user), status_code=403)
            return JSONResponse({"detail": "This page is not open to your role."}, status_code=403)
        tab = getattr(request.state, TAB_STATE, None)
        if tab is not None and not tabs.claim(tab, token_hash(request.cookies.get(SESSION_COOKIE) or "")):
            return JSONResponse({"detail": "This tab belongs to another login session; reload the page."},
                                status_code=403)
        request.state.user = user  # for Gradio's auth_dependency: the session is read once
        return await call_next(request)

    @app.get("/")
    def home(request: Request):
        user = _session_user(accounts, request)
        return RedirectResponse(HOME[user.role] if user else "/login", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, reason: str = "", next: str = ""):
        return _with_login_token(request, REASONS.get(reason, ""), next, error=False, status=200)

    @app.post("/login")
    def login(request: Request, name: str = Form(""), password: str = Form(""), next: str = Form(""),
              csrf: str = Form("")):
        if not _same(csrf, request.cookies.get(LOGIN_CSRF_COOKIE)):  # a form posted from another site
            return _with_login_token(request, FORM_EXPIRED, next, error=True, status=403, name=name)
        try:
            user, token = accounts.login(name, password, _address(request))
        except LoginRefused as refused:
            status = 429 if isinstance(refused, LoginThrottled) else 401
            return _with_login_token(request, str(refused), next, error=True, status=status, name=name)
        target = "/password" if user.must_change_password else _safe_next(next, user)
        response = RedirectResponse(target, status_code=303)
        # a browser-session cookie; the server ends the session itself after idle hours
        response.set_cookie(SESSION_COOKIE, token, **cookie)
        return response

    def _with_login_token(request: Request, message: str, next_path: str, error: bool, status: int,
                          name: str = "") -> HTMLResponse:
        """The login page with its form's CSRF token, set as a cookie too when it is new."""
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = HTMLResponse(_login_page(message, next_path, error, token, name[:NAME_SHOWN_CHARS]),
                                status_code=status, headers={"cache-control": "no-store"})
        if token != request.cookies.get(LOGIN_CSRF_COOKIE):
            response.set_cookie(LOGIN_CSRF_COOKIE, token, **cookie)
        return response

    @app.get("/password", response_class=HTMLResponse)
    def password_form(request: Request):
        user = _session_user(accounts, request)
        if user is None:
            return RedirectResponse("/login?reason=login", status_code=303)
        return _password_page(user, request, "")

    @app.post("/password")
    def change_password(request: Request, old: str = Form(""), new: str = Form(""), repeat: str = Form(""),
                        csrf: str = Form("")):
        user = _session_user(accounts, request)
        session_token = request.cookies.get(SESSION_COOKIE)
        if user is None:
            return RedirectResponse("/login?reason=login", status_code=303)
        if not _same(csrf, form_token(session_token)):
            return HTMLResponse(_password_page(user, request, FORM_EXPIRED), status_code=403)
        try:
            accounts.change_own_password(user, new, repeat, old=old, session_token=session_token,
                                         address=_address(request))
        except LoginThrottled as refused:
            return HTMLResponse(_password_page(user, request, str(refused)), status_code=429)
        except InvalidInput as error:
            return HTMLResponse(_password_page(user, request, str(error)), status_code=400)
        if user.must_change_password:
            return RedirectResponse(HOME[user.role], status_code=303)
        return HTMLResponse(_password_page(user, request, "", done=True))

    @app.get("/logout", response_class=HTMLResponse)
    def logout_form(request: Request):
        """A link to /logout asks first: logging out takes a POST with the session's token."""
        user = _session_user(accounts, request)
        if user is None:
            return RedirectResponse("/login?reason=logged-out", status_code=303)
        return HTMLResponse(_logout_page(user, request))

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")):
        session_token = request.cookies.get(SESSION_COOKIE)
        user = _session_user(accounts, request)
        if user is not None and not _same(csrf, form_token(session_token)):
            return HTMLResponse(_logout_page(user, request, FORM_EXPIRED), status_code=403)
        accounts.logout(session_token)
        response = RedirectResponse("/login?reason=logged-out", status_code=303)
        response.delete_cookie(SESSION_COOKIE, **cookie)
        return response

    @app.get(OWN_EXPORT + ".{kind}")
    def download_own_sessions(request: Request, kind: str):
        """A learner's own sessions, as JSON or as readable text (the gate let only them here)."""
        user = request.state.user
        if kind not in ("json", "txt"):
            return JSONResponse({"detail": "Not found."}, status_code=404)
        data = {k: v for k, v in service.store.export_user(user).items() if k != "rows"}  # their sessions, not the audit rows
        if kind == "json":
            content, media = json.dumps(data, indent=2, ensure_ascii=False), "application/json"
        else:
            content, media = transcripts_as_text(data["conversations"]), "text/plain; charset=utf-8"
        return _download(content, media, f"{user.name}-sessions.{kind}")

    @app.get(EXPORTS_PATH + "/{key}")
    def download_export(request: Request, key: str):
        """An admin's export, once: the gate let only an admin with a live session this far."""
        admin = accounts.require(request.state.user, "admin")
        export = exports.take(key)
        try:
            if export is None:
                raise NotFound("gone")
            service.store.user(export.user_id)  # deleted since: nothing to hand out
        except NotFound:
            return JSONResponse({"detail": "This export has expired or was downloaded already; "
                                           "export again."}, status_code=404)
        accounts.audit(admin, "download_export", f"user:{export.user_id}")
        return _download(export.content, "application/json", export.filename)

    @app.get(TURNS_CSV)
    def download_turns(request: Request):
        """The turns a teacher's review tab found (its link names the filters), as CSV."""
        teacher = request.state.user  # the gate let only staff this far
        try:
            query = TurnQuery.from_link(request.query_params)
            rows = find_turns(service, accounts, teacher, query)
        except InvalidInput as error:
            return JSONResponse({"detail": str(error)}, status_code=400)
        except NotFound as error:
            return JSONResponse({"detail": str(error)}, status_code=404)
        accounts.audit(teacher, "export_turns", f"class:{query.class_id}", {"turns": len(rows)})
        return _download(as_csv(TURN_COLUMNS, turn_table(rows)), CSV, "turns.csv")

    @app.get(AUDIT_CSV)
    def download_audit(request: Request, words: str = "", since: str = ""):
        """The audit log as the admin filtered it (every entry, not only the page's 200), as CSV."""
        admin = accounts.require(request.state.user, "admin")
        try:
            rows = audit_rows(service.store, words[:60], parse_day(since), limit=None)
        except InvalidInput as error:
            return JSONResponse({"detail": str(error)}, status_code=400)
        accounts.audit(admin, "export_audit_log", None, {"entries": len(rows)})
        return _download(as_csv(AUDIT_COLUMNS, rows), CSV, "audit-log.csv")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", media_type="text/plain")

    for path, page in pages.items():
        check_every_handler(page)
        page.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
        gr.mount_gradio_app(
            app, page, f"/{path}",
            auth_dependency=_gated_user_name,
            show_error=False, max_file_size=0, ssr_mode=False, footer_links=["gradio"],
            mcp_server=False, enable_monitoring=False, css={"learn": LEARNER_CSS}.get(path),
        )
    app.state.pages = pages
    app.state.exports = exports
    app.add_middleware(Hardening, handlers={f"/{path}": page.fns.keys() for path, page in pages.items()},
                       body_limit=limits.body_bytes, secure=secure_cookies,
                       own_routes=(EXPORTS_PATH + "/", OWN_EXPORT + ".", TURNS_CSV, AUDIT_CSV),
                       plot_pages=("/teach", "/admin"))
    return app


def _download(content: str | bytes, media_type: str, filename: str) -> Response:
    """A file the browser saves rather than shows, kept by no cache on the way."""
    return Response(content, media_type=media_type, headers={
        "content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"})


def _session_user(accounts: AccountService, request: Request) -> User | None:
    try:
        return accounts.session_user(request.cookies.get(SESSION_COOKIE))
    except AccessDenied:
        return None


def _gated_user_name(request: Request) -> str | None:
    """Who the gate let through (None, so Gradio refuses, if the gate did not run)."""
    user = getattr(request.state, "user", None)
    return user.name if user else None


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and secrets.compare_digest(given.encode(), expected.encode())


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _wants_page(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def _safe_next(next_path: str, user: User) -> str:
    """Only our own pages, and only one the user's role opens; else their home page."""
    for path, _, roles in PAGES:
        if next_path.startswith(f"/{path}/") and user.role in roles and "//" not in next_path:
            return f"/{path}/"
    return HOME[user.role]


STYLE = """<style>
body{font-family:system-ui,sans-serif;background:#f6f7f9;display:flex;justify-content:center;
padding-top:8vh;margin:0}main{background:#fff;padding:2rem 2.5rem;border-radius:12px;
box-shadow:0 2px 12px #0001;width:22rem}h1{font-size:1.4rem;margin:0 0 .3rem}
label{display:block;margin:.9rem 0 .2rem;font-size:.9rem}input{width:100%;box-sizing:border-box;
padding:.55rem;border:1px solid #ccd;border-radius:6px;font-size:1rem}button{margin-top:1.2rem;
width:100%;padding:.6rem;border:0;border-radius:6px;background:#ea580c;color:#fff;font-size:1rem}
.note{padding:.6rem;border-radius:6px;background:#eef;margin:.8rem 0}.error{background:#fee;
color:#900}p.small{font-size:.85rem;color:#555}</style>"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width,initial-scale=1'><title>{title} · Socratic tutor</title>"
            f"{STYLE}</head><body><main>{body}</main></body></html>")


def _note(message: str, error: bool) -> str:
    if not message:
        return ""
    kind = "note error" if error else "note"
    return f'<div class="{kind}" role="alert" id="message">{html.escape(message)}</div>'


def _login_page(message: str, next_path: str, error: bool, token: str, name: str = "") -> str:
    return _page("Log in", f"""<h1>Socratic tutor</h1><p class=small>Log in to work on problems,
review your class, or run the tutor.</p>{_note(message, error)}
<form method=post action=/login><input type=hidden name=next value="{html.escape(next_path)}">
<input type=hidden name=csrf value="{html.escape(token)}">
<label for=name>Name</label><input id=name name=name autocomplete=username required
value="{html.escape(name)}" maxlength=100 autofocus>
<label for=password>Password</label><input id=password name=password type=password
autocomplete=current-password required maxlength=200>
<button type=submit>Log in</button></form>
<p class=small>No account? Ask your teacher or the admin for one.</p>""")


def _password_page(user: User, request: Request, message: str, done: bool = False) -> str:
    token = html.escape(form_token(request.cookies.get(SESSION_COOKIE)))
    if done:
        return _page("Password changed", f"""<h1>Password changed</h1>{_note(
            "Your password is changed; your other sessions have ended.", False)}
<p><a href="{HOME[user.role]}">Back to your page</a></p>""")
    if user.must_change_password:
        heading, intro, old = "Choose your password", (
            f"{html.escape(user.name)}, you logged in with a one-time password. Choose your own "
            "(at least 8 characters) to go on."), ""
    else:
        heading, intro = "Change your password", (
            f"{html.escape(user.name)}, choose a new password (at least 8 characters). Your other "
            "sessions end; this one stays.")
        old = """<label for=old>Current password</label><input id=old name=old type=password
autocomplete=current-password required maxlength=200>"""
    back = "" if user.must_change_password else f'<p class=small><a href="{HOME[user.role]}">Back</a></p>'
    return _page(heading, f"""<h1>{heading}</h1><p class=small>{intro}</p>{_note(message, bool(message))}
<form method=post action=/password><input type=hidden name=csrf value="{token}">{old}
<label for=new>New password</label>
<input id=new name=new type=password autocomplete=new-password required maxlength=200>
<label for=repeat>Repeat it</label><input id=repeat name=repeat type=password
autocomplete=new-password required maxlength=200><button type=submit>Save and go on</button></form>{back}""")


def _logout_page(user: User, request: Request, message: str = "") -> str:
    token = html.escape(form_token(request.cookies.get(SESSION_COOKIE)))
    return _page("Log out", f"""<h1>Log out?</h1>{_note(message, bool(message))}
<p class=small>You are logged in as {html.escape(user.name)}.</p>
<form method=post action=/logout><input type=hidden name=csrf value="{token}">
<button type=submit id=logout>Log out</button></form>
<p class=small><a href="{HOME[user.role]}">Back to your page</a></p>""")


def _not_yours(user: User) -> str:
    return _page("Not your page", f"""<h1>Not your page</h1><p>This page is not open to
{html.escape(user.role)}s.</p><p><a href="{HOME[user.role]}">Go to your page</a> ·
<a href="/logout">Log out</a></p>""")
