"""The bar at the top of every page: who is logged in, the pages their role opens, their
password, log out (a form posted with the session's CSRF token: a link could be followed by any
page on the web)."""

from __future__ import annotations

import html

import gradio as gr

from tutor.accounts import ADMIN, ROLES, STAFF, AccountService
from tutor.storage.store import User
from tutor.ui.access import SESSION_COOKIE, allow, form_token

# path, title, roles that may open it
PAGES = (("learn", "Learn", ROLES), ("teach", "Teach", STAFF), ("admin", "Admin", (ADMIN,)))


def navigation_bar(page: gr.Blocks, accounts: AccountService, current: str) -> gr.Markdown:
    """Filled when `page` loads, from the caller's session."""
    def links(user: User, request: gr.Request) -> str:
        items = [
            f"<b>{title}</b>" if path == current else f'<a href="/{path}/">{title}</a>'
            for path, title, roles in PAGES if user.role in roles
        ]
        token = form_token(request.cookies.get(SESSION_COOKIE))
        return (f'<nav class="tutor-nav">{" · ".join(items)}<span style="float:right">'
                f"{html.escape(user.name)} ({user.role}) · "
                '<a href="/password" id="change-password">Password</a> · '
                '<form method="post" action="/logout" style="display:inline">'
                f'<input type="hidden" name="csrf" value="{token}">'
                '<button type="submit" id="logout" style="all:unset;cursor:pointer;'
                'text-decoration:underline">Log out</button></form></span></nav>')

    # Markdown, not gr.HTML: Gradio 6 renders an HTML component by evaluating a template as
    # JavaScript, which the pages' Content-Security-Policy (no eval) forbids
    bar = gr.Markdown(elem_id="navigation", sanitize_html=False)
    page.load(allow(accounts, *ROLES)(links), None, bar, api_visibility="private")
    return bar
