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
import hashlib
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
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

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if adapter_path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
    with tempfile.TemporaryDirectory() as merged:
        model.save_pretrained(merged)
        AutoTokenizer.from_pretrained(base_path).save_pretrained(merged)
        del model
        ctranslate2.converters.TransformersConverter(merged).convert(str(out), quantization=quantization, force=True)


@dataclass
class _Request:
    ids: list[int]
    params: GenerationParams
    allowed: frozenset[int] = frozenset()  # the first token must be one of these (empty: any)
    forced: list[int] = field(default_factory=list)  # tokens already chosen (the reply's opening)
    tokens: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # token ids, then None
    abandoned: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)  # a worker took it
    done: threading.Event = field(default_factory=threading.Event)  # the worker is through with it
    error: Exception | None = None
    rejected_first: bool = False  # its unconstrained first token was not allowed: decode again


class CTranslate2Backend:
    workers = WORKERS  # replies decoded at once

    def __init__(self, model_path: str | Path, adapter_path: str | Path | None = None, *,
                 data_dir: Path, version: str | None = None, quantization: str = QUANTIZATION,
                 progress: Callable[[str], None] = print):
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
        try:
            self.generator = ctranslate2.Generator(str(folder), device="cpu", compute_type=quantization,
                                                   inter_threads=WORKERS, intra_threads=max(1, CORES // WORKERS))
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelError(f"Could not load the converted engine {folder}: {error}") from error
        self._eos = {self.tokenizer.eos_token_id}
        self._pending: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._workers_guard = threading.Lock()

    def with_adapter(self, adapter_path: str | Path | None, version: str | None = None) -> CTranslate2Backend:
        """Another version (None: the bare base), converted on first use, for promoting or rolling
        back while the app serves; this one finishes the replies it has begun."""
        return CTranslate2Backend(self.model_path, adapter_path, data_dir=self.data_dir, version=version,
                                  quantization=self.quantization, progress=self.progress)

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        return chat.prompt_text(self.tokenizer, messages)

    # generation

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Reply:
        request = self._request(messages, params, params.choices)
        reply = Reply()
        reply.pieces = self._stream(request, reply)
        return reply

    def generate_batch(self, conversations: Sequence[Sequence[ChatMessage]], params: GenerationParams,
                       choices: Sequence[Sequence[str]] | None = None) -> list[Output]:
        """Whole replies for many prompts (evaluation): submitted at once, so every worker is busy."""
        choices = list(choices) if choices else [params.choices] * len(conversations)
        requests = [self._request(messages, params, options) for messages, options in zip(conversations, choices)]
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
        result, = self.generator.generate_batch(
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
        results = self.generator.score_batch(batch, max_batch_size=1)  # batches of unequal prompts: slower here
        return [list(result.log_probs[start - 1:]) for result, start in zip(results, starts)]  # no score for token 0

    def _request(self, messages: Sequence[ChatMessage], params: GenerationParams, choices: Sequence[str]) -> _Request:
        ids = chat.prompt_ids(self.tokenizer, messages)
        allowed = frozenset(chat.first_tokens(self.tokenizer, choices)) if choices else frozenset()
        request = _Request(ids, params, allowed)
        self._submit(request)
        return request

    def _stream(self, request: _Request, reply: Reply) -> Iterator[str]:
        ids: list[int] = []
        shown = ""
        try:
            for token in self._tokens(request):
                ids.append(token)
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                if text.endswith("\ufffd"):
                    continue  # a character split across tokens: wait for the rest of it
                if len(text) > len(shown):
                    yield text[len(shown):]
                    shown = text
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if len(text) > len(shown):
                yield text[len(shown):]  # the reply ended inside a character
        finally:
            request.abandoned.set()
            if request.started.is_set():
                # an abandoned reply stops at its next decoding step: wait for it, so no decoding
                # outlives its reader (a process that exits mid-decode aborts in CTranslate2)
                request.done.wait(ABANDON_WAIT_S)
        reply.truncated = self._cut(ids, request.params)

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
        self._pending.put(request)
        with self._workers_guard:
            self._workers = [worker for worker in self._workers if worker.is_alive()]
            if len(self._workers) < WORKERS:
                worker = threading.Thread(target=self._work, name="ctranslate2", daemon=True)
                self._workers.append(worker)
                worker.start()

    def _work(self) -> None:
        while True:
            try:
                request = self._pending.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._workers_guard:
                    if self._pending.empty():
                        self._workers.remove(threading.current_thread())
                        return
                continue
            request.started.set()
            try:
                self._decode(request)
            finally:
                request.done.set()

    def _decode(self, request: _Request) -> None:
        """One reply through CTranslate2, each token sent to the request as it is decoded. A
        constrained request whose first token is not allowed (the trained student's opening move
        tag, in about a quarter of turns) is stopped there and decoded again from the best
        allowed first token, picked on the scores of that first step."""
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
        try:
            if params.seed is not None:
                ctranslate2.set_random_seed(params.seed)
            result, = self.generator.generate_batch(
                [self.tokenizer.convert_ids_to_tokens(request.ids + request.forced)],
                max_length=params.max_new_tokens - len(request.forced),
                min_length=max(0, params.min_new_tokens - len(request.forced)),
                include_prompt_in_result=False, callback=on_step, return_logits_vocab=constrained,
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
