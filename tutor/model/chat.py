"""What every local engine does alike with a Hugging Face tokenizer: the chat prompt, the
constrained first token, and the version's name and prompt format from its folder."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from tutor.domain.dialogues import MOVES
from tutor.domain.prompting import INSTRUCT, ChatMessage, move_tag


def prompt_text(tokenizer, messages: Sequence[ChatMessage], *, complete: bool = False) -> str:
    """The chat template applied; a last assistant message is a start the reply continues.
    `complete`: the messages as they will open a later prompt, each ended, no reply begun."""
    cont = not complete and bool(messages) and messages[-1].role == "assistant"
    return tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages],
        add_generation_prompt=not (cont or complete), continue_final_message=cont, tokenize=False,
    )


def prompt_ids(tokenizer, messages: Sequence[ChatMessage], *, complete: bool = False) -> list[int]:
    return tokenizer(prompt_text(tokenizer, messages, complete=complete), add_special_tokens=False)["input_ids"]


def first_tokens(tokenizer, choices: Sequence[str]) -> set[int]:
    """The tokens a reply may open with to begin one of `choices`."""
    return {tokenizer(choice, add_special_tokens=False)["input_ids"][0] for choice in choices}


@functools.lru_cache(maxsize=32)
def opening_sequences(tokenizer, openings: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """Token sequences that keep a reply from opening with `openings` after its move tag: the
    tag's closing bracket, then the opening's tokens (as in "[focus] Yes"). Banning the last
    token only where the others come before it reaches no other words of the reply. Kept: the
    domain rules out one of a few fixed lists, and tokenizing one took ~4 ms of every try."""
    tag = move_tag(MOVES[0])
    closed = tokenizer(tag.rstrip(), add_special_tokens=False)["input_ids"]
    sequences = []
    for opening in openings:
        ids = tokenizer(tag + opening, add_special_tokens=False)["input_ids"]
        if ids[:len(closed)] == closed:  # the tag reads alike before the words (it does in BPE)
            sequences.append(tuple(ids[len(closed) - 1:]))
    return tuple(sequences)


def text_pieces(tokenizer, tokens: Iterable[int], ids: list[int]) -> Iterator[str]:
    """A reply's text as its token ids arrive (each appended to `ids`), in new pieces; a
    character split across tokens waits for the rest of it."""
    shown = ""
    for token in tokens:
        ids.append(token)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if not text.endswith("\ufffd") and len(text) > len(shown):
            yield text[len(shown):]
            shown = text
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if len(text) > len(shown):
        yield text[len(shown):]  # the reply ended inside a character


def adapter_name(adapter_path: str | Path) -> str:
    """peft names an adapter's modules after it: a version folder like `v1.2` becomes `v1_2`."""
    return re.sub(r"\W", "_", Path(str(adapter_path)).name)


def version_name(base_name: str, adapter_path: str | Path | None, version: str | None = None) -> str:
    folder = Path(str(adapter_path)).name if adapter_path else None
    return version or (f"{base_name}+{folder}" if folder else base_name)


def adapter_prompt_format(adapter_path: str | Path | None) -> str:
    """A registered version's manifest says which prompt format it was trained on."""
    manifest = Path(str(adapter_path)) / "manifest.json" if adapter_path else None
    if manifest is None or not manifest.exists():
        return INSTRUCT
    return json.loads(manifest.read_text(encoding="utf-8")).get("prompt_format", INSTRUCT)
