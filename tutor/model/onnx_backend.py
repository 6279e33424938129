"""The serving engine: ONNX Runtime GenAI decoding of a local Hugging Face model (a LoRA version
merged in), with 8-bit weights.

Each version (the base, or the base with one adapter) is merged and built once, in a child
process, by onnxruntime-genai's model builder into `<data dir>/engines/`, keyed by the
adapter's content hash; later starts load the built copy. Measured in `bench/generation.py`
beside plain `model.generate`, and against CTranslate2, served before it (bench/README.md:
CTranslate2 int8 decoded 28 tok/s on one core here, this engine 54, and 83 on two; its greedy
tokens match float32's where CTranslate2 int8's drift).

ONNX Runtime GenAI serves as a key/value-cached forward pass (`append_tokens`, `get_logits`):
each token is picked here, in numpy, as transformers picks it (the allowed first tokens, the
ruled-out openings, the repetition penalty, greedy or top-p), so one kept prompt state serves
any settings. One reply decodes at a time, on every core (a reply decodes faster on two cores
than two replies on one each, and a turn's prompt prefills twice as fast); waiting turns are
taken oldest first, so each learner's wait is bounded by the turns that began before theirs.

ONNX Runtime GenAI holds Python's GIL while the model runs (measured: another thread counted
6,500 a second during a prefill, 6.4 million alone), so the app's other threads pause while a
token is computed. The engine in a child process of its own was tried (bench/README.md): under
16 learners it gave a lower median but a worse 95th percentile and ~150 MB more memory, so it
runs in the app's process.
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import hashlib
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy
import onnxruntime_genai as og  # an ImportError here: the loader falls back to transformers

from tutor.domain.prompting import ChatMessage
from tutor.errors import ModelError
from tutor.model import chat
from tutor.model.backend import GenerationParams, Output, Reply
from tutor.model.loading import MODEL_LOADS

log = logging.getLogger(__name__)

ENGINES_DIR = "engines"
# 8-bit weights (MatMulNBits, blocks of 32): decoding ~2x float32 here, the same greedy tokens on
# the measured turns, and the gate's figures within its tolerances of float32 (bench/README.md)
QUANTIZATION = "int8"
EXACT = "fp32"  # the same greedy tokens as transformers in float32
CORES = os.cpu_count() or 1
IDLE_EXIT_S = 30.0  # the worker ends when idle, so a replaced version can be freed
ABANDON_WAIT_S = 5.0  # the most a reader waits for its abandoned reply's decoding to stop (one step)
_COMPLETE_MARKER = ".built"
# Kept prompt states (`_States`): float32 keys and values of the key/value heads, ~46 KB a token
# for the embedded student, allocated for the tokens a state may hold. A state holds its prompt,
# the reply and room for the learner's next message, so the session's next turn extends it.
PROMPT_STATES_MB = 640  # 16 learners' states, with the app itself within 1.5 GiB (bench/README.md)
NEXT_TURN_ROOM = 256  # tokens beyond a prompt and its reply: the next turn's new messages
# a state is never made for fewer tokens: a session's turns then go on in the state of its
# first (a prompt keeps only the recent turns: ~350-720 tokens), not prefilled afresh when
# their prompt outgrows it (a state cannot grow)
STATE_TOKENS = 832
REUSE_SHARE = 1 / 2  # a kept state is reused for a prompt it begins this much of
AHEAD_WAITING = 4  # prefills of coming turns' prompts waiting for the idle worker, at most
AHEAD_CHUNK = 64  # tokens a prefill ahead runs between looks at the queue
NUCLEUS_SEARCH = 256  # sampling looks for the top-p tokens among this many likeliest first
FIRST_WORDS_TOKENS = 24  # a reply this long has shown its first sentence, if it passed: it yields


def engine_dir(data_dir: Path, base_path: Path, adapter_path: Path | None, quantization: str = QUANTIZATION) -> Path:
    """Where a version's built engine lives: named by version, keyed by the adapter's bytes
    (a retrained adapter under the same name builds afresh)."""
    name = Path(str(base_path)).name
    if adapter_path is not None:
        digest = hashlib.sha256()
        for part in ("adapter_config.json", "adapter_model.safetensors"):
            file = Path(adapter_path) / part
            digest.update(file.read_bytes() if file.exists() else b"")
        name += f"+{Path(adapter_path).name}-{digest.hexdigest()[:12]}"
    return data_dir / ENGINES_DIR / f"onnx-{quantization}" / name


def provision_engine(data_dir: Path, base_path: Path, adapter_path: Path | None = None,
                     quantization: str = QUANTIZATION, progress: Callable[[str], None] = print) -> Path:
    """The built engine for a version, building it (in a child process) on first use."""
    target = engine_dir(data_dir, base_path, adapter_path, quantization)
    if (target / _COMPLETE_MARKER).exists():
        return target
    what = Path(base_path).name + (f" + {Path(adapter_path).name}" if adapter_path else "")
    progress(f"Building {what} for the serving engine (one time, ~20 s)...")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", __name__, str(base_path), str(partial), "--quantization", quantization]
    if adapter_path is not None:
        command += ["--adapter", str(adapter_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelError(f"Could not build {what} for the serving engine: {done.stderr.strip()[-500:]}")
    (partial / _COMPLETE_MARKER).write_text(f"{what} ({quantization})\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def build(base_path: Path, out: Path, adapter_path: Path | None = None, quantization: str = QUANTIZATION) -> None:
    """Merge the adapter (if any) into the base in float32 and build the result with the model
    builder (its command line, run in this process): CPU, logits of the last position only (a
    prompt's other logits are never read, and computing them cost a third of a prefill and
    60 MB a kept state)."""
    import runpy

    with tempfile.TemporaryDirectory() as scratch:
        merged = Path(scratch) / "merged"
        save_merged(base_path, adapter_path, merged)
        sys.argv = ["builder", "-i", str(merged), "-o", str(out), "-p", quantization, "-e", "cpu",
                    "-c", str(Path(scratch) / "cache"), "--extra_options", "prune_lm_head=true"]
        runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__")


def save_merged(base_path: Path, adapter_path: Path | None, folder: Path) -> None:
    """The version as one Hugging Face model (the adapter merged into the base, in float32) and
    its tokenizer, saved in `folder`: what the builder reads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with MODEL_LOADS:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
        if adapter_path is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(folder)


@dataclass(eq=False)  # compared and hashed by identity
class _Request:
    ids: list[int]
    params: GenerationParams
    allowed: tuple[int, ...] = ()  # the first token must be one of these (empty: any)
    # never decoded: a sequence's last token right after its other tokens, all decoded
    # (ruled-out openings after the move tag)
    banned: tuple[tuple[int, ...], ...] = ()
    tokens: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # token ids, then None
    abandoned: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)  # the worker took it
    done: threading.Event = field(default_factory=threading.Event)  # the worker is through with it
    error: Exception | None = None
    ahead: bool = False  # no reply: the start of a coming turn's prompt, prefilled and kept
    since: float = field(default_factory=time.perf_counter)  # when its learner's turn began


class _Queue:
    """The worker's queue: turns oldest first (a turn's later tries, after a failed draft, keep
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

    def oldest_turn(self) -> _Request | None:
        """The turn that would be taken next (left waiting)."""
        with self._ready:
            return self._turns[0] if self._turns else None

    def take(self, request: _Request) -> None:
        with self._ready:
            self._turns.remove(request)

    def empty(self) -> bool:
        with self._ready:
            return not (self._turns or self._ahead)

    def drop_ahead(self) -> None:
        with self._ready:
            self._ahead.clear()


@dataclass(eq=False)
class _State:
    """A generator and the tokens it holds (its key/value cache), room for `capacity` tokens."""

    generator: object
    tokens: list[int]
    capacity: int


@dataclass(eq=False)
class _Decoding:
    """A reply under way: its request, its state and the tokens it has decoded."""

    request: _Request
    state: _State
    rng: numpy.random.Generator
    reply: list[int] = field(default_factory=list)

    def priority(self) -> tuple[bool, float]:
        """Lower goes first: replies that have not shown their first words yet, then the
        oldest turn."""
        return len(self.reply) >= FIRST_WORDS_TOKENS, self.request.since


class _States:
    """Kept prompt states, so that a prompt is prefilled once (on 2 cores ~2.5 ms a token, most
    of a turn's wait): the turn's next try and the session's next turn (whose prompt extends
    this one while the recent turns fit) start from a kept state, rewound to the start they
    share, and prefill only what is new. Bounded by their bytes: the least recently used go
    first. Used by the worker alone (no lock)."""

    def __init__(self, new: Callable[[int], object], bytes_per_token: int, limit: int,
                 budget: int = PROMPT_STATES_MB << 20):
        self._new, self._per_token, self.limit, self.budget = new, bytes_per_token, limit, budget
        self._kept: list[_State] = []  # least recently used first
        # prompt tokens: run through the model for a reply, taken from a kept state, prefilled ahead
        self.prefilled = self.reused = self.ahead = 0

    def take(self, ids: Sequence[int], room: int, *, ahead: bool = False) -> tuple[_State, int]:
        """A state to decode `ids` and `room` more tokens on (no longer kept) and how many of
        `ids` it holds: a kept one sharing at least `REUSE_SHARE` of `ids`, rewound to their
        shared start (one token at least goes in, for its logits), else a new one."""
        need = len(ids) + room
        best, common = None, 0
        for state in self._kept:
            shared = _common(state.tokens, ids)
            if shared > common and state.capacity >= need:
                best, common = state, shared
        if best is not None and common >= REUSE_SHARE * len(ids):
            self._kept.remove(best)
            held = min(common, len(ids) - 1)
            best.generator.rewind_to(held)
            del best.tokens[held:]
            self.reused += held
        else:
            capacity = min(self.limit, max(need + NEXT_TURN_ROOM, STATE_TOKENS))
            best, held = _State(self._new(capacity), [], capacity), 0
        if ahead:
            self.ahead += len(ids) - held
        else:
            self.prefilled += len(ids) - held
        return best, held

    def filled(self, ids: Sequence[int], room: int) -> _State:
        """A state holding `ids` (the longest kept start, the rest prefilled) with `room` more."""
        state, held = self.take(ids, room)
        state.generator.append_tokens(numpy.array(ids[held:], dtype=numpy.int32))
        state.tokens = list(ids)
        return state

    def keep(self, state: _State) -> None:
        """Keep a state for later prompts, dropping the least recently used over the budget."""
        if not state.tokens:
            return
        self._kept.append(state)
        while sum(kept.capacity for kept in self._kept) * self._per_token > self.budget:
            self._kept.pop(0)

    def clear(self) -> None:
        self._kept.clear()


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` begin with alike."""
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


_ENGINES: weakref.WeakSet[OnnxBackend] = weakref.WeakSet()


@atexit.register
def _finish_decoding() -> None:
    """At exit, stop what decodes and wait for it (a process that exits while ONNX Runtime
    runs may abort), and drop what waits."""
    for engine in list(_ENGINES):
        engine._pending.drop_ahead()
        with engine._guard:
            running = list(engine._running)
        for request in running:
            request.abandoned.set()
        for request in running:
            request.done.wait(ABANDON_WAIT_S)


def _state_bytes_per_token(model_path: Path) -> int:
    """What a kept state holds for a token: keys and values of every key/value head of every
    layer, in float32 (46 KB for SmolLM2-135M)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    return config.num_hidden_layers * 2 * heads * head_dim * 4


class OnnxBackend:
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
        self.engine = f"onnxruntime-genai {quantization}"
        adapter = Path(str(adapter_path)) if adapter_path else None
        self.prompt_format = chat.adapter_prompt_format(adapter)
        self.version = chat.version_name(self.base_name, adapter, version)
        folder = provision_engine(data_dir, self.model_path, adapter, quantization, progress)
        try:
            config = og.Config(str(folder))
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                "intra_op_num_threads": CORES, "inter_op_num_threads": 1}}}}))
            self._model = og.Model(config)
            limit = json.loads((folder / "genai_config.json").read_text())["model"]["context_length"]
        except Exception as error:  # a damaged build: og raises plain errors
            raise ModelError(f"Could not load the serving engine in {folder}: {error}") from error
        self.states = _States(self._new_generator, _state_bytes_per_token(self.model_path), limit,
                              prompt_states_mb << 20)
        self._eos = self.tokenizer.eos_token_id
        self._vocabulary = len(self.tokenizer)
        self._pending = _Queue()
        self._worker: threading.Thread | None = None
        self._guard = threading.Lock()
        self._turns = 0  # replies waiting or decoding
        self._running: set[_Request] = set()  # begun and not through
        self._busy = threading.Lock()  # held while the model runs
        _ENGINES.add(self)

    def with_adapter(self, adapter_path: str | Path | None, version: str | None = None) -> OnnxBackend:
        """Another version (None: the bare base), built on first use, for promoting or rolling
        back while the app serves; this one finishes the replies it has begun."""
        return OnnxBackend(self.model_path, adapter_path, data_dir=self.data_dir, version=version,
                           quantization=self.quantization, progress=self.progress,
                           prompt_states_mb=self.states.budget >> 20)

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        return chat.prompt_text(self.tokenizer, messages)

    def prepare(self, messages: Sequence[ChatMessage]) -> None:
        """Prefill the start of a coming turn's prompt (complete messages) while the worker is
        idle and the learner reads and writes, so the turn prefills only what they add."""
        self._submit(_Request(chat.prompt_ids(self.tokenizer, messages, complete=True), GenerationParams(),
                              ahead=True))

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
        """A reply that may not be read (a spare draft), queued only while the engine has no
        other reply than the caller's own to decode, so it never holds up another learner's
        turn; None otherwise."""
        with self._guard:
            if self._turns > 1:
                return None
        return self.generate(messages, params, since=since)

    def generate_batch(self, conversations: Sequence[Sequence[ChatMessage]], params: GenerationParams,
                       choices: Sequence[Sequence[str]] | None = None,
                       ruled_out: Sequence[Sequence[str]] | None = None) -> list[Output]:
        """Whole replies for many prompts (evaluation), queued at once. Reply i's `choices[i]`
        and `ruled_out[i]` stand for the params' own."""
        choices = list(choices) if choices else [params.choices] * len(conversations)
        ruled_out = list(ruled_out) if ruled_out else [params.ruled_out] * len(conversations)
        requests = [self._request(messages, replace(params, ruled_out=tuple(banned)), options)
                    for messages, options, banned in zip(conversations, choices, ruled_out)]
        return [self._output(request) for request in requests]

    def samples(self, messages: Sequence[ChatMessage], params: GenerationParams, n: int) -> list[Output]:
        """`n` sampled replies to one prompt, prefilled once (the others start from its kept
        state; greedy decoding has one reply: it is repeated)."""
        if params.temperature <= 0:
            return [self._output(self._request(messages, params, ()))] * n
        seeds = [None if params.seed is None else params.seed + index for index in range(n)]
        requests = [self._request(messages, replace(params, seed=seed), ()) for seed in seeds]
        return [self._output(request) for request in requests]

    def score(self, pairs: Sequence[tuple[Sequence[ChatMessage], str]]) -> list[list[float]]:
        """Teacher forcing: the log-probability of each token of each reply (its end-of-turn
        token last) after its prompt. How a quantized engine is compared with the exact one."""
        scores = []
        with self._busy:
            for messages, reply in pairs:
                prompt = chat.prompt_ids(self.tokenizer, messages)
                reply_ids = self.tokenizer(reply, add_special_tokens=False)["input_ids"] + [self._eos]
                state = self.states.filled(prompt, len(reply_ids))
                generator, logprobs = state.generator, []
                for token in reply_ids:
                    logits = self._logits(generator)
                    top = logits.max()
                    logprobs.append(float(logits[token] - top - numpy.log(numpy.exp(logits - top).sum())))
                    generator.append_tokens(numpy.array([token], dtype=numpy.int32))
                state.tokens = prompt + reply_ids
                self.states.keep(state)
                scores.append(logprobs)
        return scores

    def _request(self, messages: Sequence[ChatMessage], params: GenerationParams, choices: Sequence[str],
                 since: float | None = None) -> _Request:
        ids = chat.prompt_ids(self.tokenizer, messages)
        allowed = tuple(sorted(chat.first_tokens(self.tokenizer, choices))) if choices else ()
        banned = chat.opening_sequences(self.tokenizer, tuple(params.ruled_out))
        request = _Request(ids, params, allowed, banned, since=time.perf_counter() if since is None else since)
        self._submit(request)
        return request

    def _output(self, request: _Request) -> Output:
        ids = list(self._tokens(request))
        return Output(self.tokenizer.decode(ids, skip_special_tokens=True), self._cut(ids, request.params))

    def _stream(self, request: _Request, reply: Reply) -> Iterator[str]:
        ids: list[int] = []
        try:
            yield from chat.text_pieces(self.tokenizer, self._tokens(request), ids)
        finally:
            self._abandon(request)
        reply.truncated = self._cut(ids, request.params)

    @staticmethod
    def _abandon(request: _Request) -> None:
        """Stop a reply nobody reads any more (or no more of it)."""
        request.abandoned.set()
        if request.started.is_set():
            # an abandoned reply stops at its next decoding step: wait for it, so no decoding
            # outlives its reader
            request.done.wait(ABANDON_WAIT_S)

    @staticmethod
    def _tokens(request: _Request) -> Iterator[int]:
        """The request's token ids as they are decoded (the end of turn not among them)."""
        while True:
            token = request.tokens.get()
            if token is None:
                break
            yield token
        if request.error is not None:
            raise ModelError(f"Generation failed: {request.error}") from request.error

    @staticmethod
    def _cut(ids: list[int], params: GenerationParams) -> bool:
        """The token limit stopped this reply (it did not end its turn)."""
        return len(ids) >= params.max_new_tokens

    # the decoding worker

    def _new_generator(self, capacity: int):
        params = og.GeneratorParams(self._model)
        params.set_search_options(max_length=capacity)
        return og.Generator(self._model, params)

    def _submit(self, request: _Request) -> None:
        with self._guard:
            self._turns += not request.ahead
            self._pending.put(request)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="onnxruntime", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """Decode the waiting turns a token at a time, by priority (`_Decoding.priority`): a
        reply that has shown its first words yields to one that has not, so a burst of turns
        does not wait behind the whole of each other's replies. Prefills ahead run when no
        reply is under way."""
        active: list[_Decoding] = []
        while True:
            waiting = self._pending.oldest_turn()
            current = min(active, key=_Decoding.priority, default=None)
            # a turn's spare try waits for its current one to end, and then starts from its state
            # (begun beside it, it prefilled the whole prompt anew: up to 1.5 s, in the turn's wait)
            if waiting is not None and (current is None or (
                    (False, waiting.since) < current.priority() and waiting.since != current.request.since)):
                self._pending.take(waiting)
                decoding = self._begin(waiting)
                if decoding is not None:
                    active.append(decoding)
                continue
            if current is not None:
                with self._busy:
                    if not self._step(current):
                        active.remove(current)
                        self._finish(current.request)
                continue
            request = self._pending.get(timeout=IDLE_EXIT_S)
            if request is None:
                with self._guard:
                    if self._pending.empty():
                        self._worker = None
                        return
                continue
            if not request.ahead:  # a turn came meanwhile: back in its place, taken above
                self._pending.put(request)
                continue
            with self._guard:
                dropped = self._turns > 0  # a prefill ahead never holds up a turn
                if not dropped:
                    self._running.add(request)
            if not dropped:
                with self._busy:
                    self._prefill(request)
            self._finish(request)

    def _finish(self, request: _Request) -> None:
        with self._guard:
            self._turns -= not request.ahead and request in self._running
            self._running.discard(request)
        request.done.set()

    def _prefill(self, request: _Request) -> None:
        """Keep the state of a coming turn's prompt start, prefilled a chunk at a time: when a
        turn comes to wait, what is prefilled so far is kept and the turn goes first (a whole
        prompt start takes ~1 s; chunks of 64 tokens prefill as fast as one pass, measured)."""
        try:
            state, held = self.states.take(request.ids, GenerationParams().max_new_tokens, ahead=True)
            state.tokens = list(request.ids[:held])
            try:
                while len(state.tokens) < len(request.ids) and not request.abandoned.is_set():
                    chunk = request.ids[len(state.tokens):len(state.tokens) + AHEAD_CHUNK]
                    state.generator.append_tokens(numpy.array(chunk, dtype=numpy.int32))
                    state.tokens += chunk
                    with self._guard:
                        if self._turns:
                            break
            finally:
                self.states.keep(state)
        except Exception:  # nothing waits on it: the turn prefills its prompt itself
            log.exception("prefilling a coming turn's prompt failed")
            self.states.clear()

    def _begin(self, request: _Request) -> _Decoding | None:
        """Start a reply: its prompt prefilled from the longest kept start (None: it is over
        already, abandoned or failed)."""
        with self._guard:
            self._running.add(request)
        request.started.set()
        if request.abandoned.is_set():
            request.tokens.put(None)
            self._finish(request)
            return None
        try:
            with self._busy:
                state = self.states.filled(request.ids, request.params.max_new_tokens)
        except Exception as error:  # the reader raises it as a ModelError
            log.exception("prefilling failed")
            request.error = error
            request.tokens.put(None)
            self._finish(request)
            return None
        return _Decoding(request, state, numpy.random.default_rng(request.params.seed))

    def _step(self, decoding: _Decoding) -> bool:
        """One token of a reply, sent to its reader: the model's logits after the prompt and the
        reply so far, then (as transformers' logits processors) the first token kept to the
        allowed ones, ruled-out openings banned, the end of turn held off until
        `min_new_tokens`, the repetition penalty from the second token on (over prompt and
        reply), and a greedy or top-p pick. False: the reply is over (its state kept)."""
        request, state, reply = decoding.request, decoding.state, decoding.reply
        params = request.params
        try:
            if request.abandoned.is_set() or len(reply) >= params.max_new_tokens:
                raise StopIteration
            logits = self._logits(state.generator)
            self._constrain(logits, request, reply)
            token = _pick(logits, params, decoding.rng)
            if token == self._eos:
                raise StopIteration
            reply.append(token)
            request.tokens.put(token)
            if len(reply) < params.max_new_tokens:
                if len(state.tokens) >= state.capacity:  # the model's context is full
                    raise StopIteration
                state.generator.append_tokens(numpy.array([token], dtype=numpy.int32))
                state.tokens.append(token)
            return True
        except StopIteration:
            self.states.keep(state)
        except Exception as error:  # the reader raises it as a ModelError; the state is dropped
            log.exception("decoding failed")
            request.error = error
        request.tokens.put(None)
        return False

    def _logits(self, generator) -> numpy.ndarray:
        """The next token's scores (the model's vocabulary may be padded past the tokenizer's)."""
        return numpy.array(generator.get_logits(), dtype=numpy.float32).reshape(-1)[:self._vocabulary]

    def _constrain(self, logits: numpy.ndarray, request: _Request, reply: list[int]) -> None:
        params = request.params
        if not reply and request.allowed:
            allowed = list(request.allowed)
            kept = logits[allowed]
            logits[:] = -numpy.inf
            logits[allowed] = kept
        for *head, last in request.banned:
            if len(head) <= len(reply) and (not head or reply[-len(head):] == head):
                logits[last] = -numpy.inf
        if len(reply) < params.min_new_tokens:
            logits[self._eos] = -numpy.inf
        if reply and params.repetition_penalty != 1.0:
            seen = numpy.unique(numpy.array(request.ids + reply))
            scores = logits[seen]
            logits[seen] = numpy.where(scores > 0, scores / params.repetition_penalty,
                                       scores * params.repetition_penalty)


def _pick(logits: numpy.ndarray, params: GenerationParams, rng: numpy.random.Generator) -> int:
    """Greedy: the best token; sampled: one drawn by its tempered probability within top-p (the
    likeliest tokens found by partition, not by sorting the vocabulary: sorting all 49k was a
    tenth of the engine's time under load)."""
    if params.temperature <= 0:
        return int(numpy.argmax(logits))
    scaled = (logits - logits.max()) / params.temperature
    probabilities = numpy.exp(scaled)
    probabilities /= probabilities.sum()
    count = min(NUCLEUS_SEARCH, len(probabilities))
    likeliest = numpy.sort(numpy.argpartition(-probabilities, count - 1)[:count])  # ties in vocabulary order
    order = likeliest[numpy.argsort(-probabilities[likeliest], kind="stable")]
    cumulative = numpy.cumsum(probabilities[order])
    if cumulative[-1] < params.top_p:  # a flat distribution: the whole vocabulary, sorted
        order = numpy.argsort(-probabilities, kind="stable")
        cumulative = numpy.cumsum(probabilities[order])
    top = order[:int(numpy.searchsorted(cumulative, params.top_p)) + 1]
    return int(rng.choice(top, p=probabilities[top] / probabilities[top].sum()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Merge a LoRA version into its base and build it for ONNX Runtime GenAI.")
    parser.add_argument("base", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--quantization", default=QUANTIZATION, choices=(QUANTIZATION, EXACT))
    args = parser.parse_args(argv)
    build(args.base, args.out, args.adapter, args.quantization)


if __name__ == "__main__":
    main()
