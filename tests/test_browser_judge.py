"""In headless Chromium: a teacher reads a session with the judge's reading under each tutor
turn, reviews a turn against it and is told where the review disagrees. Screenshots are kept."""

import os
from pathlib import Path

from tests.browser_flow import browser_tests, log_in, open_browser
from tests.conftest import CARMEN_ID, PASSWORD
from tests.web import serving
from tutor.model.fake import FakeBackend
from tutor.service import TutorService
from tutor.ui.web import build_app

pytestmark = browser_tests()


def test_the_teacher_sees_each_turns_judged_dimensions_and_where_their_review_disagrees(
        store, bank, accounts, school, tiny_judge, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    service = TutorService(store, bank, FakeBackend(["How did you get 350?"]), judge=tiny_judge)
    conversation = service.start_bank_session(school.ann, CARMEN_ID)
    list(service.reply(conversation, "I think it's 350"))
    turn = service.transcript(conversation)[-1]
    judged = service.judged_turns(conversation)[turn.id]
    # marks that say the opposite of the judge on guidance and on revealing the answer
    guidance = judged.label("Providing_Guidance") != "Yes"
    reveals = judged.label("Revealing_of_the_Answer") != "No"

    with serving(build_app(service, accounts)) as url, sync_playwright() as playwright:
        browser, page = open_browser(playwright)
        log_in(page, url, "tom", PASSWORD)
        page.get_by_role("tab", name="Learners").click()  # after the class dashboard
        expect(page.locator("#learners")).to_contain_text("ann")
        page.get_by_role("combobox", name="Learner").first.click()
        page.get_by_role("option", name="ann").click()
        page.get_by_role("combobox", name="Session").click()
        page.get_by_role("option").first.click()
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text(f"judge {judged.score:.2f}")
        for words in ("mistake identified:", "reveals the answer:", "guidance:", "actionable:", "tone:"):
            expect(transcript).to_contain_text(words)
        page.screenshot(path=str(shots / "teacher-judged-transcript.png"), full_page=True)

        page.get_by_role("tab", name="Review turns").click()
        page.get_by_role("button", name="Find turns").click()
        expect(page.locator("#turns")).to_contain_text(f"{judged.score:.2f}")  # the judge column
        page.get_by_role("combobox", name="Turn to review").click()
        page.get_by_role("option").first.click()
        expect(page.locator("#turn-context")).to_contain_text("guidance:")
        page.locator("#mark-socratic").get_by_label("yes" if guidance else "no").check()
        page.locator("#mark-no_leak").get_by_label("yes" if reveals else "no").check()
        page.get_by_role("button", name="Save review").click()
        result = page.locator("#teacher-result")
        expect(result).to_contain_text(f"Saved your review of turn {turn.id}")
        expect(result).to_contain_text("disagrees with the judge")
        expect(result).to_contain_text("socratic: you said")
        expect(result).to_contain_text("no leak: you said")
        expect(result).to_contain_text("training data for the judge's next version")
        page.screenshot(path=str(shots / "teacher-review-disagrees.png"), full_page=True)
        browser.close()
