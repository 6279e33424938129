"""Each demo role logs in through the login page in headless Chromium and sees its own page;
a learner cannot reach the teacher's or the admin's. Screenshots are kept."""

import os
from pathlib import Path

from tests.browser_flow import browser_tests, log_in, log_out, open_browser
from tests.conftest import CARMEN_ID
from tests.web import serving
from tutor.model.fake import FakeBackend
from tutor.service import TutorService
from tutor.ui.web import build_app

pytestmark = browser_tests()


def test_each_demo_role_logs_in_and_sees_its_own_page(store, bank, accounts, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    passwords = {name: password for _, name, password in accounts.ensure_first_admin()}
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    learner = store.user_named("demo-learner")
    list(service.reply(service.start_bank_session(learner, CARMEN_ID), "I think it costs $350."))

    with serving(build_app(service, accounts)) as url, sync_playwright() as playwright:
        browser, page = open_browser(playwright)

        log_in(page, url, "demo-learner", "not the password")
        expect(page.locator("#message")).to_have_text("Wrong name or password.")
        page.screenshot(path=str(shots / "login-refused.png"))

        log_in(page, url, "demo-learner", passwords["demo-learner"])
        expect(page.locator("#navigation")).to_contain_text("demo-learner (learner)")
        expect(page.locator("#navigation")).not_to_contain_text("Teach")
        expect(page.get_by_role("button", name="Start this problem")).to_be_visible()
        page.screenshot(path=str(shots / "learner-home.png"), full_page=True)
        for other in ("teach", "admin"):
            response = page.goto(f"{url}/{other}/")
            assert response.status == 403
            expect(page.get_by_role("heading")).to_have_text("Not your page")
        page.screenshot(path=str(shots / "learner-refused.png"))
        log_out(page, url)
        expect(page.locator("#message")).to_have_text("You have logged out.")

        log_in(page, url, "demo-teacher", passwords["demo-teacher"])
        expect(page.locator("#navigation")).to_contain_text("demo-teacher (teacher)")
        page.get_by_role("tab", name="Learners").click()  # after the class dashboard
        learners = page.locator("#learners")
        expect(learners).to_contain_text("demo-learner")  # the only class is opened at once
        page.get_by_role("combobox", name="Learner").click()
        page.get_by_role("option", name="demo-learner").click()
        page.get_by_role("combobox", name="Session").click()
        page.get_by_role("option").first.click()
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text("I think it costs $350.")
        expect(transcript).to_contain_text("move")
        page.screenshot(path=str(shots / "teacher-transcript.png"), full_page=True)
        assert page.goto(f"{url}/admin/").status == 403
        log_out(page, url)

        log_in(page, url, "admin", passwords["admin"])  # one-time: choose a password first
        expect(page.get_by_role("heading")).to_have_text("Choose your password")
        page.fill("#new", "admins own password")
        page.fill("#repeat", "admins own password")
        page.click("button[type=submit]")
        expect(page.locator("#navigation")).to_contain_text("admin (admin)")
        expect(page.locator("#users")).to_contain_text("demo-teacher")
        expect(page.locator("#users")).to_contain_text("demo-class")
        page.get_by_label("New user's name").fill("new-learner")
        page.get_by_role("button", name="Add user").click()
        expect(page.locator("#admin-result")).to_contain_text("One-time password")
        expect(page.locator("#users")).to_contain_text("new-learner")
        expect(page.locator("#users")).to_contain_text("never")  # new-learner's last login
        page.get_by_label("Find users (name, role or class)").fill("demo-t")
        expect(page.locator("#users")).to_contain_text("demo-teacher")
        expect(page.locator("#users")).not_to_contain_text("new-learner")
        page.get_by_role("tab", name="Classes").click()
        expect(page.locator("#admin-result")).not_to_contain_text("One-time password")  # not on every tab
        expect(page.locator("#classes")).to_contain_text("demo-learner")  # each class with its members
        # a class renamed, given no teacher, then deleted: its learner stays
        page.get_by_role("combobox", name="Class", exact=True).click()
        page.get_by_role("option", name="demo-class").click()
        expect(page.get_by_label("Its teacher (empty: none)")).to_have_value("demo-teacher")
        page.get_by_label("The class's name", exact=True).fill("demo-class-b")
        page.get_by_label("Its teacher (empty: none)").fill("")
        page.get_by_role("button", name="Save the class").click()
        expect(page.locator("#admin-result")).to_contain_text("Class demo-class-b saved.")
        expect(page.locator("#classes").get_by_role("row", name="demo-class-b — 1 demo-learner")).to_be_visible()
        page.screenshot(path=str(shots / "admin-classes.png"), full_page=True)
        page.get_by_label("Type the class's name again to delete it").fill("demo-class-b")
        page.get_by_role("button", name="Delete the class").click()
        expect(page.locator("#admin-result")).to_contain_text("its learners and their sessions stay")
        expect(page.locator("#classes")).not_to_contain_text("demo-class-b")
        page.get_by_role("tab", name="Audit log").click()
        page.get_by_label("Who, action or target contains").fill("login_failed")
        page.get_by_role("button", name="Refresh").click()
        expect(page.locator("#audit")).to_contain_text("login form")  # the learner's wrong password, first
        expect(page.locator("#audit")).not_to_contain_text("add_user")
        with page.expect_download() as download:
            page.locator("#audit-csv a").click()
        rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
        assert rows[0] == "at,who,action,target,detail" and len(rows) == 2 and "login_failed" in rows[1]
        page.screenshot(path=str(shots / "admin-users.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page fits, tables scroll inside
        page.wait_for_timeout(500)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(shots / "admin-phone.png"), full_page=True)
        assert page.refused_by_policy == []  # every role's page runs under the CSP
        browser.close()

    assert store.user_named("new-learner").must_change_password
    assert store.conversations(store.user_named("demo-learner")) and [c.name for c in store.classes()] == []
    assert ("admin", "add_user") in [(row["actor"], row["action"]) for row in store.audit_log()]
    assert (shots / "admin-users.png").stat().st_size > 10_000
