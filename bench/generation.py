"""Student decode speed: our streaming backend vs plain `model.generate` on the same weights.

    python -m bench.generation [--data-dir DIR] [--tokens 96] [--runs 5]

Prints decode tokens/s and time to first token (TTFT) for both, measured in this run, and
their ratio. Greedy decoding of a fixed number of tokens, so both do the same work.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from tutor.config import PROBLEMS_FILE, default_data_dir
from tutor.domain.problems import ProblemBank
from tutor.domain.prompting import tutoring_messages
from tutor.model.backend import GenerationParams
from tutor.model.embedded import provision_embedded
from tutor.model.transformers_backend import TransformersBackend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    backend = TransformersBackend(provision_embedded(args.data_dir or default_data_dir()))
    problem = next(iter(ProblemBank.load(PROBLEMS_FILE)))
    messages = tutoring_messages(problem, [("learner", "I think it is 350: I added the bids.")])
    params = GenerationParams(max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                              temperature=0, repetition_penalty=1.0)
    inputs = backend.prompt_ids(messages)
    kwargs = backend.generation_kwargs(params)
    print(f"model: {backend.version}  dtype: {backend.model.dtype}  "
          f"threads: {torch.get_num_threads()}  prompt: {inputs['input_ids'].shape[1]} tokens  "
          f"decode: {args.tokens} tokens")

    def plain() -> tuple[float, float]:
        with torch.inference_mode():
            started = time.perf_counter()
            backend.model.generate(**inputs, **{**kwargs, "max_new_tokens": 1, "min_new_tokens": 1})
            ttft = time.perf_counter() - started
            started = time.perf_counter()
            output = backend.model.generate(**inputs, **kwargs)
            elapsed = time.perf_counter() - started
        decoded = output.shape[1] - inputs["input_ids"].shape[1]
        return ttft, (decoded - 1) / (elapsed - ttft)

    def student() -> tuple[float, float]:
        started = time.perf_counter()
        ttft, pieces = None, 0
        for _ in backend.generate(messages, params):
            ttft = ttft or time.perf_counter() - started
            pieces += 1
        elapsed = time.perf_counter() - started
        return ttft, (args.tokens - 1) / (elapsed - ttft)

    paths = {"plain model.generate": plain, "student backend (streamed)": student}
    results = {name: [] for name in paths}
    for run in paths.values():
        run()  # warm-up
    # Interleave the paths so drift in the machine's speed (shared CPUs) hits both alike.
    for _ in range(args.runs):
        for name, run in paths.items():
            results[name].append(run())
    rows = {
        name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        for name, runs in results.items()
    }

    print(f"\n{'path':<30}{'TTFT s':>10}{'decode tok/s':>15}")
    for name, (ttft, speed) in rows.items():
        print(f"{name:<30}{ttft:>10.3f}{speed:>15.1f}")
    ratio = rows["student backend (streamed)"][1] / rows["plain model.generate"][1]
    print(f"\nstudent / plain decode speed: {ratio:.2f}x")


if __name__ == "__main__":
    main()
