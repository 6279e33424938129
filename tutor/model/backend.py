"""The one interface every student or teacher model implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, Sequence

from tutor.domain.prompting import INSTRUCT, ChatMessage

if TYPE_CHECKING:
    from tutor.domain.tutoring import TurnPrompt


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 96  # tutor turns are short: MathDial's average ~25 tokens
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    min_new_tokens: int = 0  # benchmarks set it to decode a fixed length
    seed: int | None = None
    # The reply's first token must begin one of these (a trained student picking its move
    # tag, a celebration its praise word); empty: unconstrained. Backends that cannot constrain
    # decoding ignore it.
    choices: tuple[str, ...] = ()
    # Words the reply may not open with after its move tag (a trained student picking its move:
    # praise the check would fail, `TurnPrompt.ruled_out`). Backends that cannot ban ignore it.
    ruled_out: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return asdict(self)


# Another try at a draft that failed the checks is sampled (a greedy one would write the same
# words again), and cool: a draft is shown only whole, and at the serving temperature (0.7) each
# try is another chance for a fluent false sentence to pass ("100 + 50 = how much does he have
# left?", read in v6's child-script transcripts), where near the greedy draft the student keeps
# to the planner's turn it was taught to phrase.
RETRY_TEMPERATURE = 0.3


def retry_params(params: GenerationParams, attempt: int) -> GenerationParams:
    """The generation settings of another try at a failed draft (`attempt` 1, 2, ...)."""
    return replace(params, temperature=params.temperature or RETRY_TEMPERATURE,
                   seed=None if params.seed is None else params.seed + attempt)


class Reply:
    """A reply's text pieces as they stream; `truncated` (known once they are all read) says the
    token limit cut the reply, so its last sentence may be unfinished. `close` stops it, read or
    not (`stop`: how a backend that decodes before it is read stops that)."""

    def __init__(self, pieces: Iterator[str] = iter(()), stop: Callable[[], None] | None = None):
        self.pieces = pieces
        self.truncated = False
        self._stop = stop

    def __iter__(self) -> Reply:
        return self

    def __next__(self) -> str:
        return next(self.pieces)

    def close(self) -> None:
        close = getattr(self.pieces, "close", None)
        if close:
            close()
        if self._stop:
            self._stop()


@dataclass(frozen=True)
class Output:
    """A whole reply (batched generation)."""

    text: str
    truncated: bool = False


class Backend(Protocol):
    version: str  # names the weights (and adapter) that wrote a reply; stored with every message
    prompt_format: str  # "instruct" (any chat model) or "moves" (our trained students)

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        """Stream the reply to `messages` as text pieces, in order (a `Reply`, where the backend
        can tell whether the token limit cut it)."""
        ...


def generate_all(backend: Backend, prompts: Sequence[TurnPrompt], params: GenerationParams) -> list[Output]:
    """Whole replies to many turn prompts: batched where the backend can, one by one otherwise."""
    conversations = [prompt.messages for prompt in prompts]
    choices = [prompt.first_words for prompt in prompts]
    ruled_out = [prompt.ruled_out for prompt in prompts]
    batch = getattr(backend, "generate_batch", None)
    if batch is not None:
        return batch(conversations, params, choices=choices, ruled_out=ruled_out)
    outputs = []
    for messages, options, banned in zip(conversations, choices, ruled_out):
        reply = backend.generate(messages, replace(params, choices=options, ruled_out=banned))
        text = "".join(reply)
        outputs.append(Output(text, getattr(reply, "truncated", False)))
    return outputs


def sample_outputs(backend: Backend, messages: Sequence[ChatMessage], params: GenerationParams,
                   n: int) -> list[Output]:
    """`n` sampled replies to one prompt (rejection sampling for training data): in one call
    where the backend shares the prompt's work between them, one by one otherwise."""
    samples = getattr(backend, "samples", None)
    if samples is not None:
        return samples(messages, params, n)
    outputs = []
    for index in range(n):
        seed = None if params.seed is None else params.seed + index
        reply = backend.generate(messages, replace(params, choices=(), seed=seed))
        text = "".join(reply)
        outputs.append(Output(text, getattr(reply, "truncated", False)))
    return outputs


def prompt_format(backend: Backend) -> str:
    return getattr(backend, "prompt_format", INSTRUCT)
