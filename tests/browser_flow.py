"""Drive the learner page in headless Chromium like a learner would, and screenshot it.

Used by tests/test_browser.py against an in-process app, and runnable against a running app:
    python tests/browser_flow.py http://127.0.0.1:7860 learner.png NAME PASSWORD
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

HINT = object()  # in `solve_in_browser`'s answers: press the Hint button instead of sending
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@dataclass
class SeenTurn:
    reply: str
    progress: str
    streamed: list[str]  # every state of the reply seen while it arrived, the last one included


@dataclass
class FlowResult:
    tutor_reply: str
    hint_reply: str
    progress: str
    warnings: list[str]
    refused_by_policy: list[str]  # what the Content-Security-Policy refused on the way


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_tests() -> list:
    """A browser test module's marks: `pytestmark = browser_tests()`."""
    import importlib.util

    import pytest

    return [pytest.mark.browser, pytest.mark.skipif(
        chromium_path() is None or importlib.util.find_spec("playwright") is None,
        reason="needs Debian's chromium and the playwright package")]


def drive_learner_page(url: str, screenshot: Path, login: tuple[str, str], problem_search: str = "Carmen",
                       learner_message: str = "I think the desk costs $350.",
                       reply_timeout_ms: int = 120_000) -> FlowResult:
    """Pick a problem, send a message, wait for the tutor's reply, 👍 it, ask for a hint, try
    an empty send."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, page = _open_problem(playwright, url, login, problem_search)
        box = page.locator("#message textarea")
        box.fill(learner_message)
        page.get_by_role("button", name="Send").click()
        send = page.get_by_role("button", name="Send")
        # the tutor's opening line, then its reply
        expect(page.locator("#chat .message.bot")).to_have_count(2, timeout=reply_timeout_ms)
        bot = page.locator("#chat .message.bot").nth(1)
        wait_until_settled(page, bot, send, reply_timeout_ms)
        page.locator("#chat button[aria-label='Like']").last.click()
        page.wait_for_timeout(500)
        reply = bot.inner_text()

        page.get_by_role("button", name="Hint").click()
        expect(page.locator("#chat .message.bot")).to_have_count(3, timeout=reply_timeout_ms)
        wait_until_settled(page, page.locator("#chat .message.bot").nth(2), send, reply_timeout_ms)
        hint_reply = page.locator("#chat .message.bot").nth(2).inner_text()
        progress = page.locator("#progress").inner_text()

        box.fill("   ")
        send.click()
        toast = page.locator(".toast-body").first
        toast.wait_for(timeout=10_000)
        warnings = [toast.inner_text()]
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return FlowResult(tutor_reply=reply, hint_reply=hint_reply, progress=progress, warnings=warnings,
                      refused_by_policy=page.refused_by_policy)


def open_browser(playwright):
    """A browser and a page that keeps, in `page.refused_by_policy`, every console message of
    something the Content-Security-Policy refused: a page of ours must never need one."""
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.refused_by_policy = []
    page.on("console", lambda message: page.refused_by_policy.append(message.text)
            if "Content Security Policy" in message.text else None)
    return browser, page


def log_out(page, url: str) -> None:
    """With the navigation bar's Log out button (a form post with the session's token), or from
    a page without one through /logout, which asks first."""
    if page.locator("#logout").count() == 0:
        page.goto(f"{url}/logout", wait_until="load")
    page.locator("#logout").click()
    page.locator("#message").wait_for()


def log_in(page, url: str, name: str, password: str) -> None:
    """Through the login form; lands on the role's own page (Gradio's is ready once its
    navigation bar names the user)."""
    page.goto(f"{url}/login", wait_until="load")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    # Gradio keeps connections open, so the page never reaches "networkidle".
    page.wait_for_load_state("load")


def _open_problem(playwright, url: str, login: tuple[str, str], problem_search: str):
    """A browser logged in on the learner page, the first problem matching the search started."""
    browser, page = open_browser(playwright)
    log_in(page, url, *login)
    page.locator("#navigation").get_by_text(login[0]).wait_for()
    page.get_by_label("Choose a problem (type to search)").click()
    page.keyboard.type(problem_search)
    page.get_by_role("option").first.click()
    page.get_by_role("button", name="Start this problem").click()
    page.locator("#problem").get_by_text(problem_search).first.wait_for()
    return browser, page


def wait_until_settled(page, message, send, timeout_ms: int, poll_ms: int = 400) -> list[str]:
    """Until the streamed reply stops changing and the progress panel is no longer busy (Send
    is disabled while the tutor writes; a fast reply may finish before we ever see it disabled).
    Returns each state of the reply seen on the way."""
    states, previous, waited = [], None, 0
    while waited < timeout_ms:
        text = message.inner_text()
        # Gradio marks outputs of a running event "processing"; a queued reply "Loading content"
        busy = "processing" in page.locator("#progress").inner_text() or text == "Loading content"
        if text != "Loading content" and (not states or states[-1] != text):
            states.append(text)
        if text == previous and not busy and send.is_enabled():
            return states
        previous = text
        page.wait_for_timeout(poll_ms)
        waited += poll_ms
    raise TimeoutError("the tutor's reply did not settle")


if __name__ == "__main__":
    result = drive_learner_page(sys.argv[1], Path(sys.argv[2]), (sys.argv[3], sys.argv[4]))
    print(f"tutor replied: {result.tutor_reply!r}\nhint: {result.hint_reply!r}\n"
          f"progress: {result.progress!r}\nwarnings: {result.warnings}")


def solve_in_browser(url: str, screenshot: Path, answers: list, login: tuple[str, str],
                     problem_search: str = "Carmen",
                     reply_timeout_ms: int = 60_000, poll_ms: int = 400, shot_after: int | None = None) -> list[SeenTurn]:
    """Pick a problem, send each answer (or press Hint for `HINT`), and return the tutor's reply
    after each, as it arrived. The page is screenshot at the end (and after `shot_after` turns,
    beside it as `<name>-<n>.png`)."""
    from playwright.sync_api import expect, sync_playwright

    seen = []
    with sync_playwright() as playwright:
        browser, page = _open_problem(playwright, url, login, problem_search)
        send = page.get_by_role("button", name="Send")
        for count, answer in enumerate(answers, start=1):
            if answer is HINT:
                page.get_by_role("button", name="Hint").click()
            else:
                page.locator("#message textarea").fill(answer)
                send.click()
            # after the tutor's opening line
            expect(page.locator("#chat .message.bot")).to_have_count(count + 1, timeout=reply_timeout_ms)
            bot = page.locator("#chat .message.bot").nth(count)  # this turn's reply, whatever else renders
            streamed = wait_until_settled(page, bot, send, reply_timeout_ms, poll_ms)
            seen.append(SeenTurn(bot.inner_text(), page.locator("#progress").inner_text(), streamed))
            if count == shot_after:
                page.screenshot(path=str(screenshot.with_stem(f"{screenshot.stem}-{count}")), full_page=True)
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return seen
