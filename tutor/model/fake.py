"""A deterministic backend for tests and offline demos: no weights, instant replies."""

from __future__ import annotations

from typing import Iterator, Sequence

from tutor.domain.prompting import INSTRUCT, ChatMessage
from tutor.model.backend import GenerationParams


class FakeBackend:
    """Streams canned replies word by word, cycling through them; records what it was asked."""

    def __init__(
        self,
        replies: Sequence[str] = ("What do you think the first step is?",),
        version: str = "fake",
        prompt_format: str = INSTRUCT,
    ):
        self.replies = list(replies)
        self.version = version
        self.prompt_format = prompt_format
        self.calls: list[list[ChatMessage]] = []
        self.params: list[GenerationParams] = []

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        self.calls.append(list(messages))
        self.params.append(params)
        reply = self.replies[(len(self.calls) - 1) % len(self.replies)]
        words = reply.split(" ")
        for index, word in enumerate(words):
            yield word if index == len(words) - 1 else word + " "
