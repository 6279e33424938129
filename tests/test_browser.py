"""The learner page in headless Chromium: pick a problem, chat, 👍, a refused empty message."""

import os
from pathlib import Path

from tests.browser_flow import HINT, browser_tests, drive_learner_page, solve_in_browser
from tests.conftest import FIRST_REPLY, PASSWORD, SECOND_REPLY
from tests.web import serving
from tutor.domain.faithfulness import affirms, negates
from tutor.model.fake import FakeBackend
from tutor.service import TutorService
from tutor.ui.web import build_app

ANN = ("ann", PASSWORD)  # a learner of the `school` fixture

pytestmark = browser_tests()


def test_learner_completes_a_turn_and_rates_it_in_the_browser(service, store, accounts, school, tmp_path):
    screenshot = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path)) / "learner-page.png"
    with serving(build_app(service, accounts)) as url:
        result = drive_learner_page(url, screenshot, ANN)

    assert result.tutor_reply == FIRST_REPLY
    assert result.hint_reply == SECOND_REPLY  # the fake's second reply
    assert "Step 1 of 4" in result.progress
    assert result.warnings and "Your message is empty" in result.warnings[0]
    assert result.refused_by_policy == []  # the learner's page runs under the CSP
    assert screenshot.stat().st_size > 10_000

    (conversation,) = service.sessions(school.ann)
    learner_message, tutor_message, hint_request, hint = service.transcript(conversation)
    assert learner_message.content == "I think the desk costs $350."
    assert hint_request.content == "Can I have a hint?" and hint.hint_level == 2  # the focus rung
    assert [f.value for f in store.feedback(tutor_message)] == [1]


def test_learner_solves_a_bank_problem_step_by_step_and_sees_mastery_grow(store, bank, accounts, school, tmp_path):
    # an empty model draft falls back to the planner's own words: the questions tied to steps
    service = TutorService(store, bank, FakeBackend([""]))
    screenshot = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path)) / "learner-solved.png"
    with serving(build_app(service, accounts)) as url:
        seen = solve_in_browser(url, screenshot, ["I think it's 350", "3 x 50 = 150", "150", "300",
                                                  "500"], ANN)

    replies = [turn.reply for turn in seen]
    assert replies[0] == "How did you get 350?"  # the mistake named by asking about it
    assert replies[1].startswith("That's right: $150.") and "Carmen also has to bid" in replies[1]
    # the value confirmed, then the next step as a question, its value blanked (Carmen's 3 bids add 150 too)
    assert "___" in replies[1] and "150" not in replies[1].split("? ")[0].split(". ", 1)[1]
    assert all("500" not in reply for reply in replies[:-1])
    assert "You solved the whole problem" in replies[-1]
    progress = [turn.progress for turn in seen]
    assert "Step 2 of 4 (1 done)" in progress[1] and "multiplication" in progress[1]
    assert "Solved!" in progress[-1] and "addition" in progress[-1]


def test_replies_agree_with_a_wrong_then_right_value_then_the_final_answer(store, bank, accounts, school, tmp_path):
    # A student that contradicts the learner each time, streamed slowly enough to watch: the
    # learner sees only sentences that passed, and the planner's words where the draft failed.
    drafts = ["350 isn't right. Yes, you're right, well done!",
              "Not quite, check your multiplication again.",
              "Good. Now how many white balls are there?"]
    # one draft a turn, so each turn gets the next scripted draft (tries: tests/test_draft_tries.py)
    service = TutorService(store, bank, FakeBackend(drafts, seconds_per_word=0.15), draft_tries=1)
    screenshot = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path)) / "learner-agrees.png"
    with serving(build_app(service, accounts)) as url:
        wrong, right, final = solve_in_browser(url, screenshot, ["I think the desk costs $350.",
                                                                 "3 x 50 = 150", "The desk costs $500."],
                                               ANN, poll_ms=100)

    # nothing of a failing draft shows: the planner's own turn
    assert wrong.reply == "How did you get 350?"
    assert not affirms(wrong.reply) and "you're right" not in wrong.reply
    assert right.reply.startswith("That's right: $150.") and not negates(right.reply)
    assert "Not quite" not in right.reply
    assert final.reply.startswith("Yes, $500 is the answer!")  # the draft asked about white balls: not shown
    assert "white balls" not in final.reply and "Solved!" in final.progress
    for turn in (wrong, right, final):
        # nothing shown was taken back: every state the learner saw begins the final reply
        assert all(turn.reply.startswith(state) for state in turn.streamed), turn.streamed
    assert wrong.streamed == [wrong.reply]  # shown whole, once
    assert screenshot.stat().st_size > 10_000

    (conversation,) = service.sessions(school.ann)
    tutor_turns = [m for m in service.transcript(conversation) if m.role == "tutor"]
    guards = [m.planner_state["guard"] for m in tutor_turns]
    # the failed drafts stay stored, with their reasons, as far as they were read (a draft stops
    # at its first failing sentence: "Good." celebrates no answer)
    assert all(draft.startswith(g["draft"]) and g["draft"] for g, draft in zip(guards, drafts))
    assert not any(g["passed"] for g in guards) and all(g["reasons"] for g in guards)



def test_three_hint_presses_climb_the_ladder_then_a_wrong_value_is_named_and_a_right_one_confirmed(
        store, bank, accounts, school, tmp_path):
    """The planner's own words (the model's draft is empty): on one step, Hint three times shows
    the step's question, then its operation and operands, then its value; a wrong value for the
    next step is named, the right one confirmed."""
    service = TutorService(store, bank, FakeBackend([""]))
    screenshot = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path)) / "learner-hint-ladder.png"
    with serving(build_app(service, accounts)) as url:
        seen = solve_in_browser(url, screenshot, [HINT, HINT, HINT, "is it 100?", "3 x 50 = 150"], ANN,
                                shot_after=3)
    focus, partial, bottom_out, wrong, right = (turn.reply for turn in seen)
    assert "___" in focus and "other people are bidding" in focus and "150" not in focus
    assert "Multiply 3 by 50" in partial and "150" not in partial
    assert "3 × 50 = $150" in bottom_out  # the value, as the default policy allows after three presses
    assert "100" in wrong and not affirms(wrong)  # the wrong value named, by asking about it
    assert right.startswith("Yes! $150 is correct.")
    assert screenshot.stat().st_size > 10_000 and screenshot.with_stem(f"{screenshot.stem}-3").exists()

    (conversation,) = service.sessions(school.ann)
    levels = [m.hint_level for m in service.transcript(conversation) if m.role == "tutor"][:3]
    assert levels == sorted(levels) and len(set(levels)) == 3  # three rungs, each higher
