"""The teacher's class dashboard in headless Chromium: who is stuck now, mastery per learner and
skill as a heatmap, sessions per day as a plot; and the turns table's ratings and comments in
words. Screenshots kept."""

import os
from pathlib import Path

from tests.browser_flow import browser_tests, log_in, open_browser
from tests.conftest import CARMEN_ID, PASSWORD
from tests.web import serving
from tutor.model.fake import FakeBackend
from tutor.service import THUMBS_DOWN, TutorService
from tutor.ui.web import build_app

pytestmark = browser_tests()


def test_a_teacher_sees_who_is_stuck_and_the_class_mastery_at_a_glance(store, bank, accounts, school, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    solved = service.start_bank_session(school.ann, CARMEN_ID)
    for answer in ("3 * 50 = 150", "150", "300", "500"):
        *_, last = service.reply(solved, answer)
    service.rate(school.ann, solved, last.message.id, THUMBS_DOWN, "It never said why.")
    stuck = service.start_bank_session(school.ann, CARMEN_ID)
    for _ in range(2):  # focus, then partial: the third rung of the ladder on one step
        list(service.hint(stuck))
    list(service.reply(service.start_bank_session(school.bob, CARMEN_ID), "3 * 50 = 150"))  # another class

    with serving(build_app(service, accounts)) as url, sync_playwright() as playwright:
        browser, page = open_browser(playwright)
        log_in(page, url, "tom", PASSWORD)
        stuck_table = page.locator("#stuck")
        expect(stuck_table).to_contain_text("ann")  # the only class opens at once
        expect(stuck_table).to_contain_text("1 of 4")
        heatmap = page.locator("#mastery-heatmap")
        expect(heatmap).to_contain_text("multiplication")
        expect(heatmap).not_to_contain_text("bob")
        plot = page.locator("#activity svg, #activity canvas")  # Vega drew it (it fails silently)
        expect(plot.first).to_be_visible()
        page.screenshot(path=str(shots / "teacher-dashboard.png"), full_page=True)
        expect(heatmap).to_contain_text("%")
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page fits, tables scroll inside
        page.wait_for_timeout(500)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(shots / "teacher-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 1000})

        page.get_by_role("tab", name="Review turns").click()
        page.get_by_label("Rated down only").check()
        page.get_by_role("button", name="Find turns").click()
        turns = page.locator("#turns")
        expect(turns).to_contain_text("It never said why.")
        expect(turns).to_contain_text("down")

        # search the class's turns by words, click a row to review it, see it saved beside the form
        page.get_by_label("Rated down only").uncheck()
        page.locator("#filter-words textarea, #filter-words input").first.fill("300")  # ann's message
        page.get_by_role("button", name="Find turns").click()
        expect(page.locator("#teacher-result")).to_contain_text("1 turns.")
        turns.get_by_role("row").nth(1).get_by_role("gridcell").nth(3).click()
        expect(page.locator("#turn-context mark")).to_be_visible()  # the turn under review, in its context
        expect(page.locator("#turn-context")).to_contain_text("300")
        page.locator("#mark-correct").get_by_label("yes").check()
        page.get_by_role("button", name="Save review").click()
        expect(page.locator("#review-saved")).to_contain_text("Saved your review of turn")
        page.screenshot(path=str(shots / "teacher-review.png"), full_page=True)
        assert page.refused_by_policy == []  # the plot and the styled table run under the CSP
        browser.close()
    assert (shots / "teacher-dashboard.png").stat().st_size > 10_000


def test_a_teachers_table_reads_whole_headers_a_bad_date_leaves_it_standing_and_it_downloads_as_csv(
        store, bank, accounts, school, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    conversation = service.start_bank_session(school.ann, CARMEN_ID)
    *_, last = service.reply(conversation, "3 * 50 = 150")
    service.rate(school.ann, conversation, last.message.id, THUMBS_DOWN, "Too fast.")

    with serving(build_app(service, accounts)) as url, sync_playwright() as playwright:
        browser, page = open_browser(playwright)
        log_in(page, url, "tom", PASSWORD)
        expect(page.locator("#stuck")).to_be_visible()
        page.get_by_role("tab", name="Review turns").click()
        page.get_by_role("button", name="Find turns").click()
        turns = page.locator("#turns")
        expect(turns).to_contain_text("Too fast.")
        for header in turns.locator("thead th").all():  # each header's words on one line at most twice
            assert header.bounding_box()["height"] < 60, header.inner_text()

        page.get_by_label("Since (YYYY-MM-DD)").fill("yesterday")
        page.get_by_role("button", name="Find turns").click()
        expect(page.locator(".toast-body").first).to_contain_text("Write the date as YYYY-MM-DD")
        page.wait_for_timeout(500)
        expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # no red pill over the outputs
        expect(turns).to_contain_text("Too fast.")  # the last table stands
        page.screenshot(path=str(shots / "teacher-bad-date.png"), full_page=True)

        page.get_by_label("Since (YYYY-MM-DD)").fill("")
        page.get_by_label("Rated down only").check()
        page.get_by_role("button", name="Find turns").click()
        link = page.locator("#turns-csv a")
        expect(link).to_have_text("Download these turns (CSV)")
        with page.expect_download() as download:
            link.click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        assert text.splitlines()[0].startswith("turn,learner,problem") and "Too fast." in text
        assert page.refused_by_policy == []
        browser.close()
