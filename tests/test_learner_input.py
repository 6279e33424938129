import pytest

from tutor.domain.learner_input import MAX_MESSAGE_CHARS, clean_text
from tutor.errors import InvalidInput


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_message_is_refused_with_a_clear_message(text):
    with pytest.raises(InvalidInput, match="empty"):
        clean_text(text)


def test_overlong_message_is_refused_and_says_the_limit():
    with pytest.raises(InvalidInput, match=f"{MAX_MESSAGE_CHARS:,}"):
        clean_text("7" * 20_000)


@pytest.mark.parametrize(
    "junk",
    [
        "12\x00\x01\x02",
        bytes(range(256)).decode("latin-1"),
        b"\x89PNG\r\n\x1a\n\xff\xfe".decode("utf-8", errors="replace"),
        b"\xff\xfe".decode("utf-8", errors="surrogateescape"),
    ],
)
def test_binary_junk_is_refused(junk):
    with pytest.raises(InvalidInput, match="not readable text"):
        clean_text(junk)


def test_ordinary_math_text_is_kept_normalised():
    assert clean_text("  I got \\(3 \\times 5\\) = 15 ≥ 12 ✓\r\nright?  ") == (
        "I got \\(3 \\times 5\\) = 15 ≥ 12 ✓\nright?"
    )


def test_non_text_is_refused():
    with pytest.raises(InvalidInput):
        clean_text(b"15")
