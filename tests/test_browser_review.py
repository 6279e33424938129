"""In headless Chromium: a teacher filters their class's turns to 👎 and rewrites one; an admin
starts a round with the judge's planner-or-draft pairs ticked (a tiny model trains for real in
the worker), watches it finish, reads the gate table (a candidate equal to the champion wins
nothing and is refused), promotes it on a verdict that won and rolls it back. Screenshots are
kept."""

import json
import os
from pathlib import Path

from tests.browser_flow import browser_tests, log_in, log_out, open_browser
from tests.conftest import CARMEN_ID, PASSWORD
from tests.test_rounds import deployment, turn  # noqa: F401 (a fixture)
from tests.web import serving
from tutor.service import THUMBS_DOWN
from tutor.ui.web import build_app

pytestmark = browser_tests()

REWRITE = "What do the 3 other people bid in all?"


def test_a_teacher_rewrites_a_thumbs_down_turn_and_an_admin_runs_gates_promotes_and_rolls_back(
        deployment, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    service, accounts, rounds, people, store = deployment
    shots = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path))
    conversation = service.start_bank_session(people["ann"], CARMEN_ID)
    turn(service, conversation, "I think it's 350")
    disliked = turn(service, conversation, "150")
    service.rate(people["ann"], conversation, disliked.id, THUMBS_DOWN)

    with serving(build_app(service, accounts, rounds=rounds)) as url, sync_playwright() as playwright:
        browser, page = open_browser(playwright)
        log_in(page, url, "tom", PASSWORD)
        page.get_by_role("tab", name="Learners").click()  # after the class dashboard
        expect(page.locator("#learners")).to_contain_text("ann")  # the only class opens at once
        page.get_by_role("tab", name="Review turns").click()
        page.get_by_label("Rated down only").check()
        page.get_by_role("button", name="Find turns").click()
        turns = page.locator("#turns")
        expect(turns).to_contain_text(str(disliked.id))
        expect(turns.get_by_role("row")).to_have_count(2)  # the header and the one 👎 turn
        page.get_by_role("combobox", name="Turn to review").click()
        page.get_by_role("option").first.click()
        expect(page.locator("#turn-context")).to_contain_text("150")
        page.locator("#mark-correct").get_by_label("yes").check()
        page.locator("#mark-socratic").get_by_label("no").check()
        page.get_by_label("Rewrite (what the tutor should have said)").fill(REWRITE)
        page.get_by_role("button", name="Save review").click()
        expect(page.locator("#teacher-result")).to_contain_text(f"Saved your review of turn {disliked.id}")
        page.screenshot(path=str(shots / "teacher-rewrite.png"), full_page=True)
        log_out(page, url)

        log_in(page, url, "root", PASSWORD)
        page.get_by_role("tab", name="Model").click()
        expect(page.locator("#served")).to_contain_text("champion v1")
        cancel = page.locator("#cancel-round")
        expect(cancel).to_be_disabled()  # nothing to cancel yet
        plan = page.locator("#round-plan")  # what a round would train, before it starts
        expect(plan).to_contain_text("DPO from v1")
        expect(plan).to_contain_text("teacher 1")
        expect(plan).to_contain_text("Few examples")
        page.get_by_label("Add the judge's choice between the planner's words and each sent draft (DPO)").check()
        expect(plan).to_contain_text("and pairs of the planner's words and the sent drafts")
        page.get_by_role("button", name="Start a round").click()
        expect(page.locator(".toast-body").first).to_contain_text("rarely learns anything")
        assert store.training_runs() == []  # a round on so few starts only when the admin says so
        page.get_by_label("Start even with fewer than 50 examples").check()
        page.get_by_role("button", name="Start a round").click()
        progress = page.locator("#round-progress")
        expect(progress).to_contain_text("Round 1 (DPO)")
        expect(progress.locator("progress")).to_be_visible()  # a bar from the start (preparing, then steps)
        expect(cancel).to_be_enabled()
        expect(progress).to_contain_text(" of ", timeout=120_000)  # step k of n
        page.screenshot(path=str(shots / "admin-round-progress.png"), full_page=True)
        expect(progress).to_contain_text("done", timeout=240_000)  # the timer refreshes it
        expect(cancel).to_be_disabled()
        expect(page.locator("#loss-plot svg, #loss-plot canvas").first).to_be_visible()  # Vega drew the losses
        gate = page.locator("#gate")
        expect(gate).to_contain_text("drafts pass")
        # the candidate writes what the champion writes: each dialogue's difference is 0, and
        # so is its interval: no win, no promotion
        expect(gate).to_contain_text("judge score (primary: needs a win)")
        expect(gate).to_contain_text("+0.000 to +0.000")
        expect(gate).to_contain_text("REFUSED: no win on judge score")
        expect(progress).to_contain_text("the gate failed: no win on judge score: +0.000 (95%: +0.000 to +0.000")
        page.screenshot(path=str(shots / "admin-round-gate.png"), full_page=True)
        page.get_by_role("button", name="Promote the candidate").click()
        expect(page.locator(".toast-body").first).to_contain_text("does not lie above 0")
        expect(page.locator("#served")).to_contain_text("champion v1")
        # the same candidate with a verdict that won (as a better round's would) is served at once
        run = store.training_runs()[0]
        store.update_training_run(run.id, gate=run.gate | {"passed": True, "win": run.gate["win"] | {"won": True}})
        page.get_by_role("button", name="Promote the candidate").click()
        expect(page.locator("#served")).to_contain_text("v2 is serving now", timeout=30_000)  # a loaded machine
        expect(page.locator("#served")).to_contain_text("+v2")
        page.screenshot(path=str(shots / "admin-promoted.png"), full_page=True)
        page.get_by_role("button", name="Roll back").click()
        expect(page.locator("#served")).to_contain_text("Rolled back: v1 is serving now", timeout=30_000)
        page.screenshot(path=str(shots / "admin-rolled-back.png"), full_page=True)
        assert page.refused_by_policy == []  # the loss plot and the tables run under the CSP
        browser.close()

    (run,) = store.training_runs()
    assert run.config["planner_pairs"] is True  # the tick reached the round: its data was built with them
    assert json.loads((rounds.data_dir / "rounds" / f"run-{run.id}" / "manifest.json").read_text())[
        "options"]["planner_pairs"] is True
    review = store.review(disliked.id, people["tom"])
    assert review.rewrite == REWRITE and review.marks["correct"] is True and review.marks["socratic"] is False
    assert [(c["version"], c["reason"]) for c in store.alias_changes("champion")][:2] == [
        ("v1", "rollback"), ("v2", "promote")]
    assert service.student.version.endswith("+v1")
    assert (shots / "admin-round-gate.png").stat().st_size > 10_000
