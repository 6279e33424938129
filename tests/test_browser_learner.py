"""The learner page as a learner meets it, in headless Chromium, at desktop and phone width: the
tutor speaks first, a reload keeps the open session and the 👍 given, the chat cannot be emptied,
sessions say whether they are solved, mastery is a progress element a screen reader can read, the
chat comes first on a phone, and the learner can download their own sessions. Screenshots kept."""

import json
import os
from pathlib import Path

from tests.browser_flow import browser_tests, log_in, log_out, open_browser, wait_until_settled
from tests.conftest import PASSWORD
from tests.web import serving
from tutor.model.fake import FakeBackend
from tutor.service import TutorService
from tutor.ui.web import build_app

pytestmark = browser_tests()


def test_a_learner_keeps_their_place_and_their_ratings_and_takes_their_sessions_home(
        store, bank, accounts, school, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    service = TutorService(store, bank, FakeBackend(["What do you know so far?"]))
    with serving(build_app(service, accounts)) as url, sync_playwright() as playwright:
        browser, page = open_browser(playwright)
        log_in(page, url, "ann", PASSWORD)
        picker = page.get_by_label("Choose a problem (type to search)")
        picker.click()
        picker.fill("Carmen")
        page.get_by_role("option").first.click()
        page.get_by_role("button", name="Start this problem").click()

        bot = page.locator("#chat .message.bot")
        expect(bot).to_have_count(1)  # the tutor opens the session, quoting the question
        expect(bot.first).to_contain_text('The problem asks: "How much money, in dollars, does the desk cost her?"')
        expect(bot.first).to_contain_text("How would you begin?")
        page.locator("#message textarea").fill("3 * 50 = 150")
        page.get_by_role("button", name="Send").click()
        expect(bot).to_have_count(2, timeout=60_000)
        wait_until_settled(page, bot.nth(1), page.get_by_role("button", name="Send"), 60_000)
        page.locator("#chat button[aria-label='Like']").last.click()  # the reply's, not the opening line's
        liked = page.locator("#chat button[aria-label='Liked']")
        expect(liked).to_have_count(1)
        expect(page.locator("#chat button[aria-label='Clear']")).to_be_hidden()  # no emptying the chat

        mastery = page.locator("#progress progress")
        expect(mastery.first).to_have_attribute("aria-label", "multiplication")
        assert int(mastery.first.get_attribute("value")) > 0 and mastery.first.get_attribute("max") == "100"
        page.screenshot(path=str(shots / "learner-desktop.png"), full_page=True)
        chat_box, sidebar_box = page.locator("#chat").bounding_box(), page.locator("#sidebar").bounding_box()
        assert sidebar_box["x"] < chat_box["x"]  # on a wide screen the sidebar is on the left

        page.reload(wait_until="load")
        expect(page.locator("#problem")).to_contain_text("Carmen goes to an auction")  # still open
        expect(bot).to_have_count(2)
        expect(liked).to_have_count(1)  # the 👍 as given
        page.get_by_role("combobox", name="Pick up a past session").click()
        expect(page.get_by_role("option").first).to_contain_text("in progress")
        page.keyboard.press("Escape")

        # changing one's mind: a 👎 asks what was wrong; the teacher reads the answer
        page.locator("#chat button[aria-label='Dislike']").last.click()
        expect(page.locator("#dislike-comment")).to_be_visible()
        page.get_by_placeholder("What was wrong with that reply? (optional)").fill("It did not say why.")
        page.get_by_role("button", name="Send comment").click()
        expect(page.locator("#dislike-comment")).to_be_hidden()
        (row,) = store.tutor_turns(store.class_named("5A").id)
        assert (row["thumbs"], row["comment"]) == (-1, "It did not say why.")

        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(500)
        assert page.locator("#chat").bounding_box()["y"] < page.locator("#sidebar").bounding_box()["y"]
        page.screenshot(path=str(shots / "learner-phone.png"), full_page=True)

        text = page.request.get(f"{url}/learn/my-sessions.txt")
        assert text.status == 200 and "attachment" in text.headers["content-disposition"]
        assert "You: 3 * 50 = 150" in text.text() and "Tutor: " in text.text()
        sessions = json.loads(page.request.get(f"{url}/learn/my-sessions.json").text())
        assert sessions["user"]["name"] == "ann" and len(sessions["conversations"]) == 1
        assert page.refused_by_policy == []

        # the next learner on the same school computer does not get ann's session back
        page.set_viewport_size({"width": 1280, "height": 1000})
        log_out(page, url)
        log_in(page, url, "bob", PASSWORD)
        expect(page.locator("#navigation")).to_contain_text("bob (learner)")
        page.wait_for_timeout(1000)
        expect(page.locator("#problem")).to_contain_text("No problem yet")
        expect(bot).to_have_count(0)
        browser.close()

    assert (shots / "learner-phone.png").stat().st_size > 10_000


def test_a_learner_finds_any_problem_stops_a_slow_reply_and_hears_a_turn_another_way(
        store, bank, accounts, school, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    student = FakeBackend(["What do you know so far about the bids?", "Which bids did the 3 other people make?"],
                          seconds_per_word=0.5)
    service = TutorService(store, bank, student)
    with serving(build_app(service, accounts)) as url, sync_playwright() as playwright:
        browser, page = open_browser(playwright)
        log_in(page, url, "ann", PASSWORD)
        picker = page.get_by_label("Choose a problem (type to search)")
        picker.click()
        expect(page.get_by_role("option")).to_have_count(len(bank))  # every problem, before any typing
        picker.fill("Carmen")
        page.get_by_role("option").first.click()
        page.get_by_role("button", name="Start this problem").click()
        bot, user = page.locator("#chat .message.bot"), page.locator("#chat .message.user")
        expect(bot).to_have_count(1)

        # a slow reply: Stop shows while it is written and drops it; the learner's words stay
        stop, send = page.locator("#stop"), page.get_by_role("button", name="Send")
        expect(stop).to_be_hidden()
        page.locator("#message textarea").fill("idk")
        send.click()
        expect(user).to_have_count(1)  # the learner's message at once
        expect(stop).to_be_visible()
        expect(send).to_be_disabled()
        page.screenshot(path=str(shots / "learner-writing.png"))
        stop.click()
        expect(stop).to_be_hidden(timeout=10_000)
        expect(send).to_be_enabled()
        expect(bot).to_have_count(1)
        expect(user).to_have_count(1)
        conversation = store.conversations(store.user_named("ann"))[0]
        assert [m.content for m in service.transcript(conversation)] == ["idk"]

        # a whole reply, then the same turn said another way, below it
        student.seconds_per_word = 0
        page.locator("#message textarea").fill("I don't know")
        send.click()
        expect(bot).to_have_count(2, timeout=30_000)
        wait_until_settled(page, bot.nth(1), send, 30_000)
        page.get_by_role("button", name="Say it another way").click()
        expect(bot).to_have_count(3, timeout=30_000)
        wait_until_settled(page, bot.nth(2), send, 30_000)
        assert bot.nth(2).inner_text() != bot.nth(1).inner_text()
        first, second = service.transcript(conversation)[-2:]
        assert second.planner_state["another_way_of"] == first.id
        page.screenshot(path=str(shots / "learner-another-way.png"), full_page=True)
        assert page.refused_by_policy == []
        browser.close()
