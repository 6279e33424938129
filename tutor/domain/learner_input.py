"""Checks on text a learner types before anything is stored or sent to a model."""

from __future__ import annotations

import unicodedata

from tutor.errors import InvalidInput

MAX_MESSAGE_CHARS = 2000
MAX_PROBLEM_CHARS = 4000
_ALLOWED_CONTROL = {"\n", "\t"}


def clean_text(text: object, *, max_chars: int = MAX_MESSAGE_CHARS, what: str = "message") -> str:
    """Normalised text ready to store, or InvalidInput with a message a learner understands."""
    if not isinstance(text, str):
        raise InvalidInput(f"Your {what} must be text.")
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise InvalidInput(f"Your {what} is empty: type something first.")
    if len(text) > max_chars:
        raise InvalidInput(
            f"Your {what} is {len(text):,} characters long; please keep it under "
            f"{max_chars:,} characters."
        )
    if any(_unreadable(char) for char in text):
        raise InvalidInput(
            f"Your {what} contains characters that are not readable text "
            "(it looks like binary data). Please type it again."
        )
    return text


def _unreadable(char: str) -> bool:
    # Cc: control characters (NUL, escapes...), Cs: lone surrogates, Co: private use,
    # Cn: unassigned code points. None of these belong in a message about a math problem.
    category = unicodedata.category(char)
    if category == "Cc":
        return char not in _ALLOWED_CONTROL
    return category in {"Cs", "Co", "Cn"} or char == "\ufffd"
