"""The bar at the top of every page: who is logged in, the pages their role opens, log out."""

from __future__ import annotations

import html

import gradio as gr

from tutor.accounts import ADMIN, ROLES, STAFF, AccountService
from tutor.storage.store import User
from tutor.ui.access import allow

# path, title, roles that may open it
PAGES = (("learn", "Learn", ROLES), ("teach", "Teach", STAFF), ("admin", "Admin", (ADMIN,)))


def navigation_bar(page: gr.Blocks, accounts: AccountService, current: str) -> gr.HTML:
    """Filled when `page` loads, from the caller's session."""
    def links(user: User) -> str:
        items = [
            f"<b>{title}</b>" if path == current else f'<a href="/{path}/">{title}</a>'
            for path, title, roles in PAGES if user.role in roles
        ]
        return (f'<nav class="tutor-nav">{" · ".join(items)}<span style="float:right">'
                f"{html.escape(user.name)} ({user.role}) · "
                f'<a href="/logout" id="logout">Log out</a></span></nav>')

    bar = gr.HTML(elem_id="navigation")
    page.load(allow(accounts, *ROLES)(links), None, bar, api_visibility="private")
    return bar
