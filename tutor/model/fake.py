"""A deterministic backend for tests and offline demos: no weights, instant replies."""

from __future__ import annotations

import time
from typing import Iterator, Sequence

from tutor.domain.prompting import INSTRUCT, ChatMessage
from tutor.model.backend import GenerationParams, Reply


class FakeBackend:
    """Streams canned replies word by word, cycling through them; records what it was asked.
    A word stands for a token: a reply longer than `max_new_tokens` words is cut there.
    `seconds_per_word` slows the stream down so a test can watch it arrive."""

    def __init__(
        self,
        replies: Sequence[str] = ("What do you think the first step is?",),
        version: str = "fake",
        prompt_format: str = INSTRUCT,
        seconds_per_word: float = 0.0,
    ):
        self.replies = list(replies)
        self.version = version
        self.prompt_format = prompt_format
        self.seconds_per_word = seconds_per_word
        self.calls: list[list[ChatMessage]] = []
        self.params: list[GenerationParams] = []

    def with_adapter(self, adapter_path, version: str | None = None) -> "FakeBackend":
        """The same scripted replies under another version's name (promote and roll back in tests)."""
        import copy
        from pathlib import Path

        other = copy.copy(self)
        other.version = version or (f"fake+{Path(str(adapter_path)).name}" if adapter_path else "fake")
        return other

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Reply:
        self.calls.append(list(messages))
        self.params.append(params)
        words = self.replies[(len(self.calls) - 1) % len(self.replies)].split(" ")
        reply = Reply()
        reply.truncated = len(words) > params.max_new_tokens
        words = words[:params.max_new_tokens]
        reply.pieces = self._stream([word if index == len(words) - 1 else word + " "
                                     for index, word in enumerate(words)])
        return reply

    def _stream(self, pieces: list[str]) -> Iterator[str]:
        for piece in pieces:
            if self.seconds_per_word:
                time.sleep(self.seconds_per_word)
            yield piece
