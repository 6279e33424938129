"""A candidate serving engine beside the served one: ONNX Runtime GenAI with 8-bit weights, on the
same version, through the real service, in one run.

    pip install onnxruntime-genai==0.18.0 onnx onnx_ir   # the candidate only: not in requirements.txt
    python -m bench.onnx_candidate [--data-dir DIR] [--turns 40] [--think 2]

The version (v5 merged into its base in float32) is built once with onnxruntime-genai's model
builder (`-p int8 -e cpu`: MatMulNBits, 8-bit weights in blocks of 32, int8 activations) into
`<data dir>/engines/onnx-int8/`. The candidate below is a measuring prototype, not a product
backend: one reply decodes at a time on all cores, and ORT's generator serves only as a
key/value-cached forward pass (`append_tokens`, `get_logits`) while tokens are picked here, in
numpy, as the served engine picks them (the allowed first tokens, the other move tags and the
ruled-out openings banned, the repetition penalty on the reply's tokens, greedy or top-p), so
that a kept state serves any sampling settings. Kept states: the last few generators, each
keyed by the tokens it holds; a prompt rewinds the one sharing the longest start with it (at
least half of the prompt) and appends the rest.

Reported for each engine: decoding speed on a turn prompt (as `bench/generation.py`), time to
first shown words of the same scripted turns (`bench.generation.first_words`), and how many
turns' first drafts passed the checks (a faster engine whose words fail more is no gain).
`--learners N`: instead, N scripted learners at once through one service in this process (the
lines and reading times of `bench/load.py`, without the web server, which cannot serve the
candidate), and this process's peak resident memory after each engine's run.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from bench.generation import engine_speed, first_words, learner_lines, percentile, sample_prompt
from tutor.config import MODELS_DIR, PROBLEMS_FILE, default_data_dir
from tutor.domain.problems import ProblemBank
from tutor.domain.prompting import ChatMessage
from tutor.model import chat
from tutor.model.backend import GenerationParams, Reply
from tutor.model.ctranslate2_backend import CORES, EXACT, CTranslate2Backend, engine_dir, save_merged
from tutor.model.embedded import provision_embedded
from tutor.model.registry import Registry
from tutor.service import TutorService
from tutor.storage.store import Store

MAX_LENGTH = 1280  # tokens a generator holds at most (its key/value buffer is allocated for them)
KEPT = 6  # generators kept: ~46 KB a token of MAX_LENGTH each (3 key/value heads), ~350 MB in all


def build(data_dir: Path, base: Path, adapter: Path | None) -> Path:
    """The version built for ONNX Runtime GenAI (once), its sessions on all cores."""
    target = engine_dir(data_dir, base, adapter, "onnx-int8")
    if (target / "genai_config.json").exists():
        return target
    with tempfile.TemporaryDirectory() as scratch:
        merged = Path(scratch) / "merged"
        save_merged(base, adapter, merged)
        done = subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(merged), "-o",
                               str(target), "-p", "int8", "-e", "cpu", "-c", str(Path(scratch) / "cache")],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"The model builder failed (pip install onnxruntime-genai==0.18.0 onnx onnx_ir):\n"
                     f"{done.stderr[-2000:]}")
    config_file = target / "genai_config.json"
    config = json.loads(config_file.read_text())
    config["model"]["decoder"]["session_options"] |= {"intra_op_num_threads": CORES, "inter_op_num_threads": 1}
    config_file.write_text(json.dumps(config, indent=2))
    return target


class OnnxCandidate:
    engine = "onnxruntime-genai int8 (candidate)"

    def __init__(self, folder: Path, base: Path, adapter: Path | None, kept: int = KEPT):
        import numpy
        import onnxruntime_genai as og
        from transformers import AutoTokenizer

        self.np, self.og = numpy, og
        self.model = og.Model(str(folder))
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.version = chat.version_name(base.name, adapter)
        self.prompt_format = chat.adapter_prompt_format(adapter)
        self._eos = self.tokenizer.eos_token_id
        self._decoding = threading.Lock()  # one reply at a time, on all cores
        self._waiting = 0
        self._kept: list[tuple[list[int], object]] = []  # (tokens held, generator), oldest first
        self.kept = kept
        self.prefilled = self.reused = self.ahead = 0

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        return chat.prompt_text(self.tokenizer, messages)

    def prepare(self, messages: Sequence[ChatMessage]) -> None:
        """Prefill a coming turn's prompt start while the learner writes, if nothing decodes."""
        ids = chat.prompt_ids(self.tokenizer, messages, complete=True)

        def run() -> None:
            if not self._decoding.acquire(blocking=False):
                return
            try:
                generator, held = self._generator(ids)
                generator.append_tokens(self.np.array(ids[held:], dtype=self.np.int32))
                self.ahead += len(ids) - held
                self._keep(ids, generator)
            finally:
                self._decoding.release()

        threading.Thread(target=run, daemon=True).start()

    def generate_if_idle(self, messages, params: GenerationParams, *, since: float | None = None) -> Reply | None:
        return None if self._waiting else self.generate(messages, params, since=since)

    def generate(self, messages, params: GenerationParams, *, since: float | None = None) -> Reply:
        ids = chat.prompt_ids(self.tokenizer, messages)
        tokens: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()
        self._waiting += 1

        def run() -> None:
            try:
                with self._decoding:
                    self._decode(ids, params, tokens, stop)
            except Exception as error:  # the reader raises it
                tokens.put(error)
            finally:
                self._waiting -= 1
                tokens.put(None)

        threading.Thread(target=run, daemon=True).start()
        reply = Reply(stop=stop.set)
        reply.pieces = self._stream(tokens, stop, reply, params)
        return reply

    def _stream(self, tokens: queue.SimpleQueue, stop: threading.Event, reply: Reply, params: GenerationParams):
        def decoded():
            while (token := tokens.get()) is not None:
                if isinstance(token, Exception):
                    raise token
                yield token

        ids: list[int] = []
        try:
            yield from chat.text_pieces(self.tokenizer, decoded(), ids)
        finally:
            stop.set()
        reply.truncated = len(ids) >= params.max_new_tokens

    def _generator(self, ids: list[int]):
        """A generator holding a start of `ids` (a kept one, rewound), and how many tokens."""
        shared = [(_common(tokens, ids), index) for index, (tokens, _) in enumerate(self._kept)]
        common, index = max(shared, default=(0, -1))
        if common >= len(ids) // 2 > 0:
            _, generator = self._kept.pop(index)
            held = min(common, len(ids) - 1, generator.token_count())  # one token at least goes in
            generator.rewind_to(held)
            return generator, held
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=MAX_LENGTH)
        return self.og.Generator(self.model, params), 0

    def _keep(self, tokens: list[int], generator) -> None:
        self._kept.append((list(tokens), generator))
        del self._kept[:len(self._kept) - self.kept]

    def _decode(self, ids: list[int], params: GenerationParams, out: queue.SimpleQueue, stop: threading.Event) -> None:
        np = self.np
        allowed = sorted(chat.first_tokens(self.tokenizer, params.choices)) if params.choices else []
        banned = sorted(chat.other_moves_tokens(self.tokenizer, params.choices))
        sequences = chat.opening_sequences(self.tokenizer, tuple(params.ruled_out))
        generator, held = self._generator(ids)
        self.reused += held
        self.prefilled += len(ids) - held
        generator.append_tokens(np.array(ids[held:], dtype=np.int32))
        held_tokens, reply = list(ids), []
        random = np.random.default_rng(params.seed)
        try:
            while len(reply) < params.max_new_tokens and not stop.is_set():
                logits = np.array(generator.get_logits(), dtype=np.float32).reshape(-1)
                logits[banned] = -np.inf
                if allowed and not reply:
                    first = np.full_like(logits, -np.inf)
                    first[allowed] = logits[allowed]
                    logits = first
                for sequence in sequences:  # only over decoded tokens, as CTranslate2's
                    before = list(sequence[:-1])
                    if not before or reply[-len(before):] == before:
                        logits[sequence[-1]] = -np.inf
                if reply and params.repetition_penalty != 1.0:
                    seen = np.unique(reply)
                    logits[seen] = np.where(logits[seen] > 0, logits[seen] / params.repetition_penalty,
                                            logits[seen] * params.repetition_penalty)
                if len(reply) < params.min_new_tokens:
                    logits[self._eos] = -np.inf
                token = _pick(np, logits, params, random)
                reply.append(token)
                if token == self._eos:
                    break
                out.put(token)
                generator.append_tokens(np.array([token], dtype=np.int32))
                held_tokens.append(token)
        finally:
            self._keep(held_tokens, generator)


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def _pick(np, logits, params: GenerationParams, random) -> int:
    if params.temperature <= 0:
        return int(np.argmax(logits))
    scaled = (logits - logits.max()) / params.temperature
    probabilities = np.exp(scaled) / np.exp(scaled).sum()
    order = np.argsort(-probabilities)
    top = order[:int(np.searchsorted(np.cumsum(probabilities[order]), params.top_p)) + 1]
    return int(random.choice(top, p=probabilities[top] / probabilities[top].sum()))


def decode_speed(engine, prompts: list[list[ChatMessage]], tokens: int) -> tuple[float, float]:
    """Median (prefill s, decode tok/s) over prompts, each read whole (`engine` keeps no state)."""
    engine_speed(engine, prompts[0], tokens)  # warm-up
    rows = [engine_speed(engine, messages, tokens) for messages in prompts]
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)


def first_drafts_passing(store: Store) -> tuple[int, int]:
    """(turns whose first draft passed the checks, turns)."""
    turns = [turn.message.planner_state.get("guard", {}) for turn in store.labelled_turns()]
    return sum(1 for guard in turns if guard.get("passed") and not guard.get("tries")), len(turns)


def many_learners(engine, bank: ProblemBank, learners: int, think: tuple[float, float] = (10.0, 20.0),
                  seed: int = 0) -> tuple[list[float], int, float]:
    """Learners at once, each on its own bank problem saying `bench/load.py`'s lines after reading
    and typing for a while: (seconds to first shown words of every turn, turns, seconds in all)."""
    with tempfile.TemporaryDirectory() as scratch:
        service = TutorService(Store(Path(scratch) / "bench.db"), bank, engine)
        first_words(service, 1, 0)  # warm-up, not counted
        seconds: list[float] = []
        problems = list(bank)

        conversations = [service.start_session(service.local_learner(f"bench-learner-{index}"),
                                               problems[index % len(problems)]) for index in range(learners)]

        def work(index: int) -> None:
            rng = random.Random(seed + index)
            conversation = conversations[index]
            for said in learner_lines(problems[index % len(problems)]):
                time.sleep(rng.uniform(*think))
                started, first = time.perf_counter(), None
                for reply in service.reply(conversation, said):
                    if first is None and reply.text.strip():
                        first = time.perf_counter() - started
                seconds.append(first)

        started = time.perf_counter()
        threads = [threading.Thread(target=work, args=(index,)) for index in range(learners)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return seconds, len(seconds), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--think", type=float, default=2.0)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--learners", type=int, default=0, help="learners at once, in this process (0: one)")
    parser.add_argument("--kept", type=int, default=KEPT, help="the candidate's kept generators")
    parser.add_argument("--only", choices=("served", "candidate"), default=None, help="measure one engine only")
    args = parser.parse_args()
    if args.only and not args.learners:
        parser.error("--only goes with --learners")
    data_dir = args.data_dir or default_data_dir()
    base = provision_embedded(data_dir)
    bank = ProblemBank.load(PROBLEMS_FILE)
    adapter = Registry(MODELS_DIR, Store(None)).resolve("champion", progress=lambda _: None)
    started = time.perf_counter()
    folder = build(data_dir, base, adapter)
    print(f"candidate built in {folder} ({time.perf_counter() - started:.0f} s)")
    engines = {"served": lambda: CTranslate2Backend(base, adapter, data_dir=data_dir),
               "candidate": lambda: OnnxCandidate(folder, base, adapter, kept=args.kept)}
    engines = {name: make() for name, make in engines.items() if args.only in (None, name)}
    if args.learners:
        for name, engine in engines.items():
            seconds, turns, elapsed = many_learners(engine, bank, args.learners)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{name:<10} {engine.engine}: {turns} turns of {args.learners} learners in {elapsed:.0f} s; first "
                  f"words p50 {percentile(seconds, 50):.2f} s, p95 {percentile(seconds, 95):.2f} s; "
                  f"peak resident {peak:.0f} MiB (this process, so far)")
            print(f"{name}_load_ttft_p50_s: {percentile(seconds, 50):.2f}")
            print(f"{name}_load_ttft_p95_s: {percentile(seconds, 95):.2f}")
        return
    prompts = [sample_prompt(TutorService(Store(None), bank, engines["served"]), problem) for problem in list(bank)[:5]]
    # greedy replies beside the exact engine's (transformers' own tokens, float32)
    exact = CTranslate2Backend(base, adapter, data_dir=data_dir, quantization=EXACT, prompt_states_mb=0)
    greedy = GenerationParams(max_new_tokens=48, temperature=0, repetition_penalty=1.0)
    replies = {name: ["".join(engine.generate(messages, greedy)) for messages in prompts]
               for name, engine in (("exact", exact), *engines.items())}
    for name in engines:
        same = sum(a == b for a, b in zip(replies[name], replies["exact"]))
        print(f"{name}: {same} of {len(prompts)} greedy replies as float32's (48 tokens)")
    # decoding speed with no prompt state kept (each call reads its whole prompt)
    decoding = {"served": CTranslate2Backend(base, adapter, data_dir=data_dir, prompt_states_mb=0),
                "candidate": OnnxCandidate(folder, base, adapter, kept=0)}
    figures = {}
    for name, engine in engines.items():
        prefill, speed = decode_speed(decoding[name], prompts, args.tokens)
        with tempfile.TemporaryDirectory() as scratch:
            store = Store(Path(scratch) / "bench.db")
            seconds = first_words(TutorService(store, bank, engine), args.turns, args.think)
            passed, turns = first_drafts_passing(store)
        figures[name] = (prefill, speed, percentile(seconds, 50), percentile(seconds, 95), passed, turns)
        print(f"{name:<10} {engine.engine}: prefill {prefill:.3f} s, decode {speed:.1f} tok/s; first words "
              f"p50 {figures[name][2]:.2f} s, p95 {figures[name][3]:.2f} s; first drafts passing {passed} of {turns}")
    print()
    for name, (prefill, speed, p50, p95, passed, turns) in figures.items():
        print(f"{name}_decode_tok_per_s: {speed:.1f}")
        print(f"{name}_ttft_p50_s: {p50:.2f}")
        print(f"{name}_ttft_p95_s: {p95:.2f}")
        print(f"{name}_first_drafts_pass: {passed / turns:.3f}")
    print(f"candidate_decode_vs_served: {figures['candidate'][1] / figures['served'][1]:.2f}")


if __name__ == "__main__":
    main()
