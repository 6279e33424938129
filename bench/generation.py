"""The serving engine beside plain `model.generate`, on the same weights, in one run.

    python -m bench.generation [--data-dir DIR] [--model champion] [--tokens 96] [--runs 5] [--turns 40] [--think 2]

1. Decode speed: greedy decoding of a fixed number of tokens on real tutor-turn prompts (the
   served version's prompt format), plain transformers `generate` (float32, the weights the
   engine builds) against the ONNX Runtime GenAI engine the app serves (int8 weights) and its
   exact float32 variant (the same greedy tokens as transformers). Paths are interleaved so drift in a shared CPU hits all alike.
2. Time to first shown words of real tutor turns through the service (grading, planning,
   retrieval, the checks, and text held back until it passes): scripted learners on bank
   problems say a wrong value, the right first step, "I don't know", and the final answer,
   each after `--think` seconds of reading and writing (a real learner takes longer; the
   engine prefills the next prompt's start meanwhile, as it does in the app).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tutor.config import MODELS_DIR, PROBLEMS_FILE, default_data_dir
from tutor.domain.problems import ProblemBank
from tutor.domain.prompting import ChatMessage
from tutor.domain.tutoring import solution_steps
from tutor.model.backend import GenerationParams
from tutor.model.onnx_backend import EXACT, QUANTIZATION, OnnxBackend
from tutor.model.embedded import provision_embedded
from tutor.model.registry import Registry
from tutor.model.transformers_backend import TransformersBackend
from tutor.service import TutorService
from tutor.storage.store import Store


SERVED = f"onnxruntime-genai {QUANTIZATION} (served)"
EXACT_PATH = f"onnxruntime-genai {EXACT} (exact)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", default="champion", help="registry version or alias ('base': none)")
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--turns", type=int, default=40, help="tutor turns timed through the service")
    parser.add_argument("--think", type=float, default=2.0, help="seconds a scripted learner takes to answer")
    args = parser.parse_args()
    threads = torch.get_num_threads()  # torch's own default, before an engine touches OpenMP's
    data_dir = args.data_dir or default_data_dir()
    base = provision_embedded(data_dir)
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(Path(scratch) / "bench.db")
        adapter = Registry(MODELS_DIR, store).resolve(args.model, progress=lambda _: None)
        engine = OnnxBackend(base, adapter, data_dir=data_dir)
        speeds = decode_speeds(base, adapter, data_dir, args.tokens, args.runs, threads)
        before = (engine.states.prefilled, engine.states.reused, engine.states.ahead)
        ttfts = first_words(TutorService(store, ProblemBank.load(PROBLEMS_FILE), engine), args.turns, args.think)
        prefilled, reused, ahead = (now - then for now, then in zip(
            (engine.states.prefilled, engine.states.reused, engine.states.ahead), before))

    plain = speeds["plain generate (float32)"]
    print(f"\nmodel: {engine.version}  torch threads: {threads}  decode: {args.tokens} tokens, "
          f"{args.runs} runs of each path, interleaved")
    print(f"{'path':<32}{'prefill s':>10}{'decode tok/s':>14}{'vs generate':>13}")
    for name, (prefill, speed) in speeds.items():
        print(f"{name:<32}{prefill:>10.3f}{speed:>14.1f}{speed / plain[1]:>12.2f}x")
    served = speeds[SERVED]
    p50, p95 = percentile(ttfts, 50), percentile(ttfts, 95)
    print(f"\ntime to first shown words, {len(ttfts)} tutor turns through the service, the learner "
          f"answering after {args.think:g} s: p50 {p50:.2f} s, p95 {p95:.2f} s (goals 0.5 s, 1.5 s)")
    print(f"prompt tokens of those turns' replies: {prefilled} prefilled while the learner waited, "
          f"{reused} read from kept states; {ahead} prefilled ahead, while the learner wrote")
    print(f"\ngenerate_tok_per_s: {plain[1]:.1f}")
    print(f"engine_tok_per_s: {served[1]:.1f}")
    print(f"speedup_vs_generate: {served[1] / plain[1]:.2f}")
    print(f"exact_speedup_vs_generate: {speeds[EXACT_PATH][1] / plain[1]:.2f}")
    print(f"ttft_p50_s: {p50:.2f}")
    print(f"ttft_p95_s: {p95:.2f}")


def decode_speeds(base: Path, adapter: Path | None, data_dir: Path, tokens: int, runs: int,
                  threads: int) -> dict[str, tuple[float, float]]:
    """(prefill seconds, decode tokens/s) per path, medians over prompts of real tutor turns;
    the engines keep no prompt states here (each call prefills its whole prompt, as generate does)."""
    plain = TransformersBackend(base, adapter, dtype="float32")
    served = OnnxBackend(base, adapter, data_dir=data_dir, prompt_states_mb=0)
    exact = OnnxBackend(base, adapter, data_dir=data_dir, quantization=EXACT, prompt_states_mb=0)
    bank = ProblemBank.load(PROBLEMS_FILE)
    service = TutorService(Store(None), bank, served)
    prompts = [sample_prompt(service, problem) for problem in list(bank)[:runs]]
    params = GenerationParams(max_new_tokens=tokens, min_new_tokens=tokens, temperature=0, repetition_penalty=1.0)

    def transformers_path(messages) -> tuple[float, float]:
        torch.set_num_threads(threads)
        inputs = plain.prompt_ids(messages)
        kwargs = plain.generation_kwargs(params)
        with torch.inference_mode():
            started = time.perf_counter()
            plain._decode(**inputs, **{**kwargs, "max_new_tokens": 1, "min_new_tokens": 1})
            prefill = time.perf_counter() - started
            started = time.perf_counter()
            plain._decode(**inputs, **kwargs)
            elapsed = time.perf_counter() - started
        return prefill, (tokens - 1) / (elapsed - prefill)

    paths = {"plain generate (float32)": transformers_path,
             SERVED: lambda messages: engine_speed(served, messages, tokens),
             EXACT_PATH: lambda messages: engine_speed(exact, messages, tokens)}
    for run in paths.values():
        run(prompts[0])  # warm-up
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for messages in prompts:
        for name, run in paths.items():
            results[name].append(run(messages))
    return {name: (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
            for name, rows in results.items()}


def engine_speed(backend, messages, tokens: int) -> tuple[float, float]:
    """(prefill seconds, decode tokens/s) of one greedy reply of `tokens` tokens through an
    engine that keeps no prompt state (each call reads its whole prompt)."""
    started = time.perf_counter()
    "".join(backend.generate(messages, GenerationParams(max_new_tokens=1, min_new_tokens=1, temperature=0)))
    prefill = time.perf_counter() - started
    params = GenerationParams(max_new_tokens=tokens, min_new_tokens=tokens, temperature=0, repetition_penalty=1.0)
    started = time.perf_counter()
    "".join(backend.generate(messages, params))
    return prefill, (tokens - 1) / (time.perf_counter() - started - prefill)


def sample_prompt(service: TutorService, problem):
    """The prompt of a tutor turn answering a wrong first step, in the served version's format."""
    learner = service.local_learner("bench-prompts")
    conversation = service.start_session(learner, problem)
    for _ in service.reply(conversation, "I think it is 7."):
        pass
    for _ in service.reply(conversation, "I don't know what to do next."):
        pass
    stored = service.store.messages(conversation)[-1].planner_state["prompt"]["messages"]
    return [ChatMessage(m["role"], m["content"]) for m in stored]


def first_words(service: TutorService, turns: int, think: float) -> list[float]:
    """Seconds from a learner's message to the first words shown of the tutor's answer."""
    learner = service.local_learner("bench-learner")
    seconds: list[float] = []
    problems = list(service.bank)
    for _ in service.reply(service.start_session(learner, problems[0]), "warm up"):
        pass  # not timed
    index = 0
    while len(seconds) < turns:
        problem = problems[index % len(problems)]
        index += 1
        conversation = service.start_session(learner, problem)
        for said in learner_lines(problem):
            time.sleep(think)
            started, first = time.perf_counter(), None
            for reply in service.reply(conversation, said):  # read to the end: the turn is stored
                if first is None and reply.text.strip():
                    first = time.perf_counter() - started
            seconds.append(first)
    return seconds[:turns]


def learner_lines(problem) -> list[str]:
    """A scripted learner's messages: a wrong value, the right first step, "I don't know", the
    final answer."""
    first = solution_steps(problem)[0].value
    return [f"Is it {first + 7}?", f"I get {first}", "I don't know", f"The final answer is {problem.answer}."]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
