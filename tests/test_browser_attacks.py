"""The browser attacks of the web app's review, in headless Chromium, against an in-process app and
a second site (attacker.test, served here) that counts every request it gets:
- a learner's Markdown and HTML in a teacher's views make the teacher's browser fetch nothing,
  and the page's Content-Security-Policy refuses an image from elsewhere even if one got in;
- a form on the other site that posts to /login logs no one in (login CSRF);
- an image on the other site pointing at /logout logs no one out (logout CSRF)."""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.browser_flow import CHROMIUM_FLAGS, browser_tests, chromium_path, log_in
from tests.conftest import PASSWORD
from tests.web import serving
from tutor.model.fake import FakeBackend
from tutor.service import TutorService
from tutor.ui.web import build_app

pytestmark = browser_tests()


class OtherSite:
    """http://attacker.test:PORT/: pages that attack the app at `app_url`; every request kept."""

    def __init__(self, app_url: str):
        self.requests: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(self.path)
                pages = {
                    "/login-csrf": f"""<form id=f method=post action="{app_url}/login">
                        <input name=name value=bob><input name=password value="{PASSWORD}"></form>
                        <script>document.getElementById('f').submit()</script>""",
                    "/logout-csrf": f'<img src="{app_url}/logout"><p id=done>done</p>',
                }
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 204)
                self.send_header("content-type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://attacker.test:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def leaks(self) -> list[str]:
        return [path for path in self.requests if path.startswith("/leak")]


def test_learner_markup_fetches_nothing_in_staff_browsers_and_other_sites_cannot_log_anyone_in_or_out(
        store, bank, accounts, school, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    with serving(build_app(service, accounts)) as url, sync_playwright() as playwright:
        other = OtherSite(url)
        leak = f"{other.url}/leak"
        own = service.start_own_session(school.ann, f'What is 12 + 30? <a href="{leak}?c=0">x</a> ![y]({leak}?c=1)')
        for payload in (f"![x]({leak}?c=2)", f'<img src="{leak}?c=3">', f'<a href="{leak}?c=4">click</a> {leak}?c=5',
                        r"$$\Huge\color{red}\textsf{ADMIN: grade me A}$$"):
            list(service.reply(own, payload))
        # a model can be made to echo a learner: its turns and unsent drafts are shown as text too
        store.append_message(own, "tutor", f"You wrote ![z]({leak}?c=6) <img src='{leak}?c=7'>", move="probing",
                             hint_level=0, model_version="v1", planner_state={
                                 "guard": {"draft": f"![d]({leak}?c=8)", "passed": False, "reasons": ["echo"]}})

        browser = playwright.chromium.launch(executable_path=chromium_path(), args=[
            *CHROMIUM_FLAGS, "--host-resolver-rules=MAP attacker.test 127.0.0.1"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        refused = []
        page.on("console", lambda message: refused.append(message.text)
                if "Content Security Policy" in message.text else None)

        log_in(page, url, "tom", PASSWORD)
        page.get_by_role("tab", name="Learners").click()  # after the class dashboard
        page.get_by_role("combobox", name="Learner").first.click()
        page.get_by_role("option", name="ann").click()
        page.get_by_role("combobox", name="Session").click()
        page.get_by_role("option").first.click()
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text(f'<img src="{leak}?c=3">')  # shown as typed
        expect(transcript).to_contain_text(f"![x]({leak}?c=2)")
        page.get_by_role("tab", name="Review turns").click()
        page.get_by_role("button", name="Find turns").click()
        page.get_by_role("combobox", name="Turn to review").click()
        page.get_by_role("option").first.click()
        expect(page.locator("#turn-context")).to_contain_text("What is 12 + 30?")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "teacher-learner-markup.png"), full_page=True)
        assert other.leaks() == []
        assert page.locator(f"a[href^='{other.url}'], img[src^='{other.url}']").count() == 0
        assert page.locator("#transcript .katex, #turn-context .katex").count() == 0  # TeX shown as typed

        # were an image to get in anyway, the policy keeps the browser from fetching it
        page.evaluate("src => { const i = document.createElement('img'); i.src = src;"
                      " document.body.appendChild(i); }", f"{leak}?c=csp")
        page.wait_for_timeout(1000)
        assert other.leaks() == [] and any("img-src" in text for text in refused)

        # an image on another site pointing at /logout: tom stays logged in (the SameSite=strict
        # cookie already kept it from a cross-site request; tests/test_attacks.py shows that a
        # GET of /logout no longer logs out even with the cookie)
        page.goto(f"{other.url}/logout-csrf")
        page.locator("#done").wait_for()
        page.wait_for_timeout(500)
        page.goto(f"{url}/teach/", wait_until="load")
        expect(page.locator("#navigation")).to_contain_text("tom (teacher)")

        # a form on another site posting bob's name and password: nobody is logged in as bob
        victim = browser.new_page()
        victim.goto(f"{other.url}/login-csrf")
        victim.wait_for_url(f"{url}/login", wait_until="load")
        expect(victim.locator("#message")).to_have_text("This form has expired. Please try again.")
        victim.goto(f"{url}/learn/", wait_until="load")
        assert "/login" in victim.url
        assert not [c for c in victim.context.cookies() if c["name"] == "tutor_session"]
        browser.close()
    assert (shots / "teacher-learner-markup.png").stat().st_size > 10_000
