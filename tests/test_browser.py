"""The learner page in headless Chromium: pick a problem, chat, 👍, a refused empty message."""

import importlib.util
import os
from pathlib import Path

import pytest

from tests.browser_flow import chromium_path, drive_learner_page
from tutor.ui.learner import build_learner_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium_path() is None or importlib.util.find_spec("playwright") is None,
        reason="needs Debian's chromium and the playwright package",
    ),
]


def test_learner_completes_a_turn_and_rates_it_in_the_browser(service, store, tmp_path):
    page = build_learner_page(service)
    page.queue()
    _, url, _ = page.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    screenshot = Path(os.environ.get("TUTOR_SCREENSHOT_DIR", tmp_path)) / "learner-page.png"
    try:
        result = drive_learner_page(url, screenshot)
    finally:
        page.close()

    assert result.tutor_reply == "What do you know so far?"
    assert result.hint_reply == "Why did you add those two numbers?"  # the fake's second reply
    assert "Step 1 of 4" in result.progress
    assert result.warnings and "Your message is empty" in result.warnings[0]
    assert screenshot.stat().st_size > 10_000

    (conversation,) = service.sessions(service.local_learner())
    learner_message, tutor_message, hint_request, hint = service.transcript(conversation)
    assert learner_message.content == "I think the desk costs $350."
    assert hint_request.content == "Can I have a hint?" and hint.hint_level == 1
    assert [f.value for f in store.feedback(tutor_message)] == [1]
