"""The one interface every student or teacher model implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator, Protocol, Sequence

from tutor.domain.prompting import ChatMessage


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 96  # tutor turns are short: MathDial's average ~25 tokens
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    min_new_tokens: int = 0  # benchmarks set it to decode a fixed length
    seed: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


class Backend(Protocol):
    version: str  # names the weights (and adapter) that wrote a reply; stored with every message

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        """Stream the reply to `messages` as text pieces, in order."""
        ...


def generate_all(backend: Backend, conversations: Sequence[Sequence[ChatMessage]],
                 params: GenerationParams) -> list[str]:
    """Whole replies to many prompts: batched where the backend can, one by one otherwise."""
    batch = getattr(backend, "generate_batch", None)
    if batch is not None:
        return batch(conversations, params)
    return ["".join(backend.generate(messages, params)) for messages in conversations]
