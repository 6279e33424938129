"""The serving engine: CTranslate2 decoding of a local Hugging Face model (a LoRA version merged in).

Each version (the base, or the base with one adapter) is merged and converted once, in a
child process, into `<data dir>/engines/`, keyed by the adapter's content hash; later starts
load the converted copy. Measured in `bench/generation.py` beside plain `model.generate`.

Concurrent replies decode side by side, one reply per worker: each worker thread takes the
next waiting request and runs it on its own CTranslate2 replica (the weights are shared) with
one core, streaming its tokens through CTranslate2's step callback. Measured on 2 cores
(bench/README.md): batching prompts of unequal length made prefill 4-7x slower than one by
one, and a reply decodes faster on one thread (42 tok/s) than on two (30).
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import hashlib
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import ctranslate2  # an ImportError here: the loader falls back to transformers

from tutor.domain.prompting import ChatMessage
from tutor.errors import ModelError
from tutor.model import chat
from tutor.model.backend import GenerationParams, Output, Reply

log = logging.getLogger(__name__)

ENGINES_DIR = "engines"
# int8 weights: prefill ~2x and decoding ~1.4x float32 here, and the gate's figures within its
# tolerances of float32 ("exact": the same greedy tokens as transformers in float32); bench/README.md
QUANTIZATION = "int8_float32"
EXACT = "float32"
CORES = os.cpu_count() or 1
WORKERS = min(4, CORES)  # replies decoded at once
IDLE_EXIT_S = 30.0  # a worker ends when idle, so a replaced version can be freed
ABANDON_WAIT_S = 5.0  # the most a reader waits for its abandoned reply's decoding to stop (one step)
_COMPLETE_MARKER = ".converted"
# Kept prompt states (`_PromptStates`). CTranslate2 keeps every attention head's keys and values
# in float32: ~140 KB a token for the embedded student, 55 MB for a 400-token turn prompt.
PROMPT_STATES_MB = 192  # with the app itself, within 1.5 GiB under 16 learners (bench/README.md)
REUSE_SHARE = 1 / 2  # a kept state is reused for a prompt it covers this much of; else one is kept
AHEAD_WAITING = 2 * WORKERS  # prefills of coming turns' prompts waiting for an idle worker, at most


def engine_dir(data_dir: Path, base_path: Path, adapter_path: Path | None, quantization: str = QUANTIZATION) -> Path:
    """Where a version's converted engine lives: named by version, keyed by the adapter's bytes
    (a retrained adapter under the same name converts afresh)."""
    name = Path(str(base_path)).name
    if adapter_path is not None:
        digest = hashlib.sha256()
        for part in ("adapter_config.json", "adapter_model.safetensors"):
            file = Path(adapter_path) / part
            digest.update(file.read_bytes() if file.exists() else b"")
        name += f"+{Path(adapter_path).name}-{digest.hexdigest()[:12]}"
    return data_dir / ENGINES_DIR / quantization / name


def provision_engine(data_dir: Path, base_path: Path, adapter_path: Path | None = None,
                     quantization: str = QUANTIZATION, progress: Callable[[str], None] = print) -> Path:
    """The converted engine for a version, converting it (in a child process) on first use."""
    target = engine_dir(data_dir, base_path, adapter_path, quantization)
    if (target / _COMPLETE_MARKER).exists():
        return target
    what = Path(base_path).name + (f" + {Path(adapter_path).name}" if adapter_path else "")
    progress(f"Converting {what} for the serving engine (one time, ~15 s)...")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", __name__, str(base_path), str(partial), "--quantization", quantization]
    if adapter_path is not None:
        command += ["--adapter", str(adapter_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelError(f"Could not convert {what} for the serving engine: {done.stderr.strip()[-500:]}")
    (partial / _COMPLETE_MARKER).write_text(f"{what} ({quantization})\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def convert(base_path: Path, out: Path, adapter_path: Path | None = None, quantization: str = QUANTIZATION) -> None:
    """Merge the adapter (if any) into the base in float32 and convert the result."""
    import tempfile

    with tempfile.TemporaryDirectory() as merged:
        save_merged(base_path, adapter_path, Path(merged))
        ctranslate2.converters.TransformersConverter(merged).convert(str(out), quantization=quantization, force=True)


def save_merged(base_path: Path, adapter_path: Path | None, folder: Path) -> None:
    """The version as one Hugging Face model (the adapter merged into the base, in float32) and
    its tokenizer, saved in `folder`: what engine converters read."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if adapter_path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(folder)


@dataclass(eq=False)  # compared and hashed by identity: the workers keep a set of those they decode
class _Request:
    ids: list[int]
    params: GenerationParams
    allowed: frozenset[int] = frozenset()  # the first token must be one of these (empty: any)
    # never decoded: a single token anywhere (the other move tags' first tokens), a longer
    # sequence's last token after the others (ruled-out openings after the move tag)
    banned: tuple[tuple[int, ...], ...] = ()
    forced: list[int] = field(default_factory=list)  # tokens already chosen (the reply's opening)
    tokens: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # token ids, then None
    abandoned: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)  # a worker took it
    done: threading.Event = field(default_factory=threading.Event)  # the worker is through with it
    error: Exception | None = None
    rejected_first: bool = False  # its unconstrained first token was not allowed: decode again
    ahead: bool = False  # no reply: the start of a coming turn's prompt, prefilled and kept
    since: float = field(default_factory=time.perf_counter)  # when its learner's turn began


class _PromptStates:
    """Key/value states of recent prompts, so that a prompt is prefilled once (on 2 cores ~2 ms
    a token, most of a turn's wait): the turn's second decode (its free first token was not
    allowed, or its draft failed and is tried again, afresh or going on from shown text) and
    the session's next turn (whose prompt extends this one while the recent turns fit) start
    from a kept state and prefill only what is new.

    The states live in CTranslate2's static-prompt cache, which keeps the state of every static
    prompt it is given for as long as the loaded model lives and cannot drop one. So they are
    counted here, and when the next would go over the budget the model is loaded afresh (~0.15 s),
    states and all, at a moment when nothing else decodes on it (until then no more are kept)."""

    def __init__(self, load: Callable[[], ctranslate2.Generator], bytes_per_token: int,
                 budget: int = PROMPT_STATES_MB << 20):
        self._load, self._per_token, self.budget = load, bytes_per_token, budget
        self.generator = load()
        self._kept: set[tuple[int, ...]] = set()  # the prompts whose states `generator` holds
        self._bytes = 0
        self._guard = threading.Lock()
        # prompt tokens: run through the model for a reply, taken from a kept state, prefilled ahead
        self.prefilled = self.reused = self.ahead = 0

    def plan(self, ids: Sequence[int], *, ahead: bool = False,
             alone: bool = False) -> tuple[ctranslate2.Generator, list[int], bool] | None:
        """The generator to decode `ids` on, the prefix of `ids` it starts from (its static
        prompt: a kept state, or one to keep) and whether that prefix's state is kept.
        `ahead`: a prompt's start prefilled before it is needed, to keep whole (None: kept
        already, or it cannot be). `alone`: nothing else decodes on the engine now, so the
        model may be replaced (else an old model and its states would live on beside the new
        one until their replies end: measured, 2 GiB at peak under 16 learners)."""
        with self._guard:
            if self.generator is None:  # loading it afresh failed last time
                self.generator = self._load()
            kept = max((prefix for prefix in self._kept
                        if len(prefix) < len(ids) and tuple(ids[:len(prefix)]) == prefix), key=len, default=())
            prefix = tuple(ids[:-1])  # the last token starts the decoding
            if ahead and kept == prefix:
                return None
            if not ahead and kept and len(kept) >= REUSE_SHARE * len(ids):
                self.reused += len(kept)
                self.prefilled += len(ids) - len(kept)
                return self.generator, list(kept), True
            size = len(prefix) * self._per_token
            full = self._bytes + size > self.budget
            refused = not prefix or size > self.budget or (full and not alone)
            if ahead and refused:
                return None  # nothing is prefilled
            if ahead:
                self.ahead += len(ids)
            else:
                self.prefilled += len(ids)
            if refused:
                return self.generator, [], False
            if full:
                self._kept.clear()
                self._bytes = 0
                self.generator = None  # the old model and its states are freed before the new one loads
                self.generator = self._load()
            self._kept.add(prefix)
            self._bytes += size
            return self.generator, list(prefix), True


class _Queue:
    """The workers' queue: turns oldest first (a turn's later tries, after a failed draft, keep
    its place instead of queueing behind turns that began since); prefills ahead only when no
    turn waits, the latest first (the oldest are dropped: their learners may have written
    already)."""

    def __init__(self):
        self._turns: list[_Request] = []  # by `since`
        self._ahead: deque[_Request] = deque(maxlen=AHEAD_WAITING)
        self._ready = threading.Condition()

    def put(self, request: _Request) -> None:
        with self._ready:
            if request.ahead:
                self._ahead.append(request)
            else:
                bisect.insort(self._turns, request, key=lambda waiting: waiting.since)
            self._ready.notify()

    def get(self, timeout: float) -> _Request | None:
        with self._ready:
            if not self._ready.wait_for(lambda: self._turns or self._ahead, timeout):
                return None
            return self._turns.pop(0) if self._turns else self._ahead.pop()

    def empty(self) -> bool:
        with self._ready:
            return not (self._turns or self._ahead)

    def drop_ahead(self) -> None:
        with self._ready:
            self._ahead.clear()


def _release_freed_memory() -> None:
    """Hand freed memory back to the system. A reply's copy of a kept state (tens of MB) and the
    states of a replaced model are freed into glibc's per-thread heaps, which keep them: measured
    in a simulation of 8 learners, 2.2 GiB resident without this, 0.9-1.2 GiB with it (0.7 with
    nothing kept); bench/README.md has the load run's figures."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None  # glibc only
    except OSError:
        return None


_LIBC = _load_libc()
_ENGINES: weakref.WeakSet[CTranslate2Backend] = weakref.WeakSet()


@atexit.register
def _finish_prefills() -> None:
    """At exit, let prefills ahead that are running end (a process that exits while CTranslate2
    decodes aborts) and drop those waiting."""
    for engine in list(_ENGINES):
        engine._pending.drop_ahead()
        with engine._workers_guard:
            running = [request for request in engine._running if request.ahead]
        for request in running:
            request.done.wait(ABANDON_WAIT_S)


def _state_bytes_per_token(model_path: Path) -> int:
    """What CTranslate2 keeps for a prompt token: keys and values of every attention head of
    every layer, in float32 (measured: 138 KB for SmolLM2-135M, as computed here)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers * 2 * config.num_attention_heads * head_dim * 4


class CTranslate2Backend:
    workers = WORKERS  # replies decoded at once

    def __init__(self, model_path: str | Path, adapter_path: str | Path | None = None, *,
                 data_dir: Path, version: str | None = None, quantization: str = QUANTIZATION,
                 progress: Callable[[str], None] = print, prompt_states_mb: int = PROMPT_STATES_MB):
        from transformers import AutoTokenizer

        self.model_path, self.data_dir, self.quantization = Path(str(model_path)), data_dir, quantization
        self.progress = progress
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        except (OSError, ValueError) as error:
            raise ModelError(f"Could not load the model {model_path}: {error}") from error
        self.base_name = self.model_path.name
        self.engine = f"ctranslate2 {quantization}"
        adapter = Path(str(adapter_path)) if adapter_path else None
        self.prompt_format = chat.adapter_prompt_format(adapter)
        self.version = chat.version_name(self.base_name, adapter, version)
        folder = provision_engine(data_dir, self.model_path, adapter, quantization, progress)

        def load() -> ctranslate2.Generator:
            return ctranslate2.Generator(str(folder), device="cpu", compute_type=quantization,
                                         inter_threads=WORKERS, intra_threads=max(1, CORES // WORKERS))

        try:
            self.states = _PromptStates(load, _state_bytes_per_token(self.model_path), prompt_states_mb << 20)
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelError(f"Could not load the converted engine {folder}: {error}") from error
        self._eos = {self.tokenizer.eos_token_id}
        self._pending = _Queue()
        self._workers: list[threading.Thread] = []
        self._workers_guard = threading.Lock()
        self._turns = 0  # replies waiting or decoding
        self._running: set[_Request] = set()  # what the workers decode now
        _ENGINES.add(self)

    def with_adapter(self, adapter_path: str | Path | None, version: str | None = None) -> CTranslate2Backend:
        """Another version (None: the bare base), converted on first use, for promoting or rolling
        back while the app serves; this one finishes the replies it has begun."""
        return CTranslate2Backend(self.model_path, adapter_path, data_dir=self.data_dir, version=version,
                                  quantization=self.quantization, progress=self.progress,
                                  prompt_states_mb=self.states.budget >> 20)

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        return chat.prompt_text(self.tokenizer, messages)

    def prepare(self, messages: Sequence[ChatMessage]) -> None:
        """Prefill the start of a coming turn's prompt (complete messages) on an idle worker,
        while the learner reads and writes, so the turn prefills only what they add."""
        self._submit(_Request(chat.prompt_ids(self.tokenizer, messages, complete=True), GenerationParams(), ahead=True))

    # generation

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams, *,
                 since: float | None = None) -> Reply:
        """`since`: when the learner's turn began (`time.perf_counter`), so each try of a turn
        waits only for the turns that began before it (default: now)."""
        request = self._request(messages, params, params.choices, since)
        reply = Reply(stop=lambda: self._abandon(request))  # decoding begins before it is read
        reply.pieces = self._stream(request, reply)
        return reply

    def generate_if_idle(self, messages: Sequence[ChatMessage], params: GenerationParams, *,
                         since: float | None = None) -> Reply | None:
        """A reply that may not be read (a spare draft), decoded only while the engine has no
        reply to decode but the caller's own, so it never holds up another learner's turn; None
        otherwise."""
        with self._workers_guard:
            if self._turns > 1 or self._turns >= WORKERS:
                return None
        return self.generate(messages, params, since=since)

    def generate_batch(self, conversations: Sequence[Sequence[ChatMessage]], params: GenerationParams,
                       choices: Sequence[Sequence[str]] | None = None,
                       ruled_out: Sequence[Sequence[str]] | None = None) -> list[Output]:
        """Whole replies for many prompts (evaluation): submitted at once, so every worker is busy.
        Reply i's `choices[i]` and `ruled_out[i]` stand for the params' own."""
        choices = list(choices) if choices else [params.choices] * len(conversations)
        ruled_out = list(ruled_out) if ruled_out else [params.ruled_out] * len(conversations)
        requests = [self._request(messages, replace(params, ruled_out=tuple(banned)), options)
                    for messages, options, banned in zip(conversations, choices, ruled_out)]
        outputs = []
        for request in requests:
            ids = list(self._tokens(request))
            outputs.append(Output(self.tokenizer.decode(ids, skip_special_tokens=True), self._cut(ids, params)))
        return outputs

    def samples(self, messages: Sequence[ChatMessage], params: GenerationParams, n: int) -> list[Output]:
        """`n` sampled replies to one prompt, decoded together after one pass over the prompt
        (greedy decoding has one reply: it is repeated)."""
        if params.seed is not None:
            ctranslate2.set_random_seed(params.seed)
        greedy = params.temperature <= 0
        result, = self.states.generator.generate_batch(
            [self.tokenizer.convert_ids_to_tokens(chat.prompt_ids(self.tokenizer, messages))],
            max_length=params.max_new_tokens, num_hypotheses=1 if greedy else n, include_prompt_in_result=False,
            return_end_token=True, **_sampling(params))
        outputs = []
        for ids in result.sequences_ids * (n if greedy else 1):
            ended = bool(ids) and ids[-1] in self._eos
            outputs.append(Output(self.tokenizer.decode(ids, skip_special_tokens=True), not ended))
        return outputs

    def score(self, pairs: Sequence[tuple[Sequence[ChatMessage], str]]) -> list[list[float]]:
        """Teacher forcing: the log-probability of each token of each reply (its end-of-turn
        token last) after its prompt. How a quantized engine is compared with the exact one."""
        batch, starts = [], []
        for messages, reply in pairs:
            prompt = chat.prompt_ids(self.tokenizer, messages)
            reply_ids = self.tokenizer(reply, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
            batch.append(self.tokenizer.convert_ids_to_tokens(prompt + reply_ids))
            starts.append(len(prompt))
        results = self.states.generator.score_batch(batch, max_batch_size=1)  # batches of unequal prompts: slower here
        return [list(result.log_probs[start - 1:]) for result, start in zip(results, starts)]  # no score for token 0

    def _request(self, messages: Sequence[ChatMessage], params: GenerationParams, choices: Sequence[str],
                 since: float | None = None) -> _Request:
        ids = chat.prompt_ids(self.tokenizer, messages)
        allowed = frozenset(chat.first_tokens(self.tokenizer, choices)) if choices else frozenset()
        banned = [(token,) for token in sorted(chat.other_moves_tokens(self.tokenizer, choices))]
        banned += chat.opening_sequences(self.tokenizer, tuple(params.ruled_out))
        request = _Request(ids, params, allowed, tuple(banned), since=time.perf_counter() if since is None else since)
        self._submit(request)
        return request

    def _stream(self, request: _Request, reply: Reply) -> Iterator[str]:
        ids: list[int] = []
        try:
            yield from chat.text_pieces(self.tokenizer, self._tokens(request), ids)
        finally:
            self._abandon(request)
        reply.truncated = self._cut(ids, request.params)

    def _alone(self) -> bool:
        """The calling worker's request is the only one decoding."""
        with self._workers_guard:
            return len(self._running) <= 1

    @staticmethod
    def _abandon(request: _Request) -> None:
        """Stop a reply nobody reads any more (or no more of it)."""
        request.abandoned.set()
        if request.started.is_set():
            # an abandoned reply stops at its next decoding step: wait for it, so no decoding
            # outlives its reader (a process that exits mid-decode aborts in CTranslate2)
            request.done.wait(ABANDON_WAIT_S)

    def _tokens(self, request: _Request) -> Iterator[int]:
        """The request's token ids as they are decoded (its forced opening first)."""
        while True:
            token = request.tokens.get()
            if token is None:
                break
            yield token
        if request.error is not None:
            raise ModelError(f"Generation failed: {request.error}") from request.error

    def _cut(self, ids: list[int], params: GenerationParams) -> bool:
        """The token limit stopped this reply (its last token is no end of turn)."""
        return len(ids) >= params.max_new_tokens and ids[-1] not in self._eos

    # the decoding workers

    def _submit(self, request: _Request) -> None:
        with self._workers_guard:
            self._turns += not request.ahead
        self._pending.put(request)
        with self._workers_guard:
            self._workers = [worker for worker in self._workers if worker.is_alive()]
            if len(self._workers) < WORKERS:
                worker = threading.Thread(target=self._work, name="ctranslate2", daemon=True)
                self._workers.append(worker)
                worker.start()

    def _work(self) -> None:
        while True:
            request = self._pending.get(timeout=IDLE_EXIT_S)
            if request is None:
                with self._workers_guard:
                    if self._pending.empty():
                        self._workers.remove(threading.current_thread())
                        return
                continue
            with self._workers_guard:
                dropped = request.ahead and (self._turns or any(other.ahead for other in self._running))
                if not dropped:
                    self._running.add(request)
            if dropped:  # a prefill ahead must not hold up a turn (which prefills its prompt itself)
                request.done.set()
                continue
            request.started.set()
            try:
                self._prefill(request) if request.ahead else self._decode(request)
            finally:
                with self._workers_guard:
                    self._turns -= not request.ahead
                    self._running.discard(request)
                request.done.set()
                _release_freed_memory()

    def _prefill(self, request: _Request) -> None:
        """Keep the state of a coming turn's prompt start (one decoding step, its token unused)."""
        tokens = self.tokenizer.convert_ids_to_tokens
        try:  # planning too: it may load the model afresh
            planned = self.states.plan(request.ids, ahead=True, alone=self._alone())
            if planned is None:
                return
            generator, start, keep = planned
            generator.generate_batch([tokens(request.ids[len(start):])], static_prompt=tokens(start) or None,
                                     cache_static_prompt=keep, max_length=1, include_prompt_in_result=False)
        except Exception:  # nothing waits on it: the turn prefills its prompt itself
            log.exception("prefilling a coming turn's prompt failed")

    def _decode(self, request: _Request) -> None:
        """One reply through CTranslate2, each token sent to the request as it is decoded.
        CTranslate2 cannot restrict the first token to a set, only ban tokens throughout: the
        other move tags' first tokens are banned, so a trained student opens with an allowed tag
        (v5, 40 scripted turns: before, 29 opened with another, each then a second pass over
        the prompt, a whole one when its state was not kept; after, none of 70 tries); so are
        ruled-out openings right after the tag (a sequence ban: the bracket, then the words). A
        constrained request whose first token is still not allowed (no tag at all; a reply that
        must open with a celebration or a question word) is stopped there and decoded again from
        the best allowed first token, picked on the scores of that first step. Either way the
        allowed token is the one constrained decoding picks (greedy; sampled, top-p aside)."""
        if request.abandoned.is_set():
            request.tokens.put(None)
            return
        params = request.params
        constrained = bool(request.allowed) and not request.forced

        def on_step(step) -> bool:
            if step.step == 0 and constrained and step.token_id not in request.allowed:
                request.rejected_first = True
                return True
            if request.abandoned.is_set():
                return True
            if not (step.is_last and step.token_id in self._eos):
                request.tokens.put(step.token_id)
            return False

        for token in request.forced:
            request.tokens.put(token)
        prompt = request.ids + request.forced
        tokens = self.tokenizer.convert_ids_to_tokens
        try:  # planning too: it may load the model afresh
            generator, start, keep = self.states.plan(prompt, alone=self._alone())
            if params.seed is not None:
                ctranslate2.set_random_seed(params.seed)
            result, = generator.generate_batch(
                [tokens(prompt[len(start):])], static_prompt=tokens(start) or None,
                cache_static_prompt=keep,
                max_length=params.max_new_tokens - len(request.forced),
                min_length=max(0, params.min_new_tokens - len(request.forced)),
                include_prompt_in_result=False, callback=on_step, return_logits_vocab=constrained,
                suppress_sequences=[tokens(list(sequence)) for sequence in request.banned] or None,
                **_sampling(params),
            )
        except Exception as error:  # the reader raises it as a ModelError
            log.exception("decoding failed")
            request.error = error
        if request.rejected_first and request.error is None and not request.abandoned.is_set():
            self._decode_from_allowed(request, result.logits[0][0])  # hypothesis 0, step 0
        else:
            request.tokens.put(None)

    def _decode_from_allowed(self, request: _Request, first_logits) -> None:
        """The first token among the allowed ones on the model's own scores (as transformers'
        constrained decoding does), then decoding on from it."""
        import numpy

        allowed = sorted(request.allowed)
        logits = numpy.asarray(first_logits)[allowed]
        request.forced = [_pick(allowed, [float(value) for value in logits], request.params)]
        request.rejected_first = False
        self._decode(request)


def _sampling(params: GenerationParams) -> dict:
    if params.temperature <= 0:
        return {"sampling_topk": 1, "repetition_penalty": params.repetition_penalty}
    return {"sampling_topk": 0, "sampling_topp": params.top_p, "sampling_temperature": params.temperature,
            "repetition_penalty": params.repetition_penalty}


def _pick(tokens: list[int], logits: list[float], params: GenerationParams) -> int:
    """Greedy: the best token; sampling: one drawn by its tempered probability."""
    if params.temperature <= 0:
        return tokens[max(range(len(tokens)), key=logits.__getitem__)]
    import math
    import random

    top = max(logits)
    weights = [math.exp((value - top) / params.temperature) for value in logits]
    return random.Random(params.seed).choices(tokens, weights)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Merge a LoRA version into its base and convert it for CTranslate2.")
    parser.add_argument("base", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--quantization", default=QUANTIZATION)
    args = parser.parse_args(argv)
    convert(args.base, args.out, args.adapter, args.quantization)


if __name__ == "__main__":
    main()
