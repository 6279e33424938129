"""Start-up time and memory of the real app, after its first run.

    python -m bench.startup [--turns 4]

`python app.py` starts once in a scratch data directory (the first run: database, first
accounts; the converted model and engines are shared with the default data directory when that
has them) and is stopped; then it is started again and timed until its login page answers
(`cold_start_s`). A learner then logs in and sends the scripted lines of `bench/generation.py`;
`rss_mib` is the server's peak resident memory by then. The same is measured with
`--engine transformers` (plain transformers serving, the fallback) as the baseline.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from bench.generation import learner_lines
from bench.load import PASSWORD, Learner, work
from bench.server import add_learners, resident_mib, running_app, scratch_data_dir
from tutor.config import PROBLEMS_FILE
from tutor.domain.problems import ProblemBank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=4, help="tutor turns served before memory is read")
    args = parser.parse_args()
    problem = next(iter(ProblemBank.load(PROBLEMS_FILE)))
    figures = {}
    for engine in ("onnxruntime", "transformers"):
        with tempfile.TemporaryDirectory() as scratch:
            data_dir = scratch_data_dir(Path(scratch))
            name, = add_learners(data_dir, 1, PASSWORD)
            options = ("--engine", engine)
            with running_app(data_dir, *options) as (_, _, first_run):
                pass
            with running_app(data_dir, *options) as (url, process, ready):
                learner = Learner(name, problem.id, learner_lines(problem)[: args.turns])
                started = time.perf_counter()
                work(url, learner, (0.0, 0.0), random.Random(0))
                served = time.perf_counter() - started
                rss, peak = resident_mib(process.pid)
        if learner.errors:
            raise SystemExit(f"{engine}: {learner.errors}")
        figures[engine] = (first_run, ready, learner.ttfts[0], served, rss, peak)
        print(f"{engine:<13} first run serves after {first_run:5.1f} s, later starts {ready:5.1f} s; "
              f"first turn's first words {learner.ttfts[0]:.2f} s, {len(learner.ttfts)} turns in {served:.1f} s; "
              f"resident {rss:.0f} MiB (peak {peak:.0f})", flush=True)

    *_, ready, first_words, _, _, peak = figures["onnxruntime"]
    baseline = figures["transformers"]
    print(f"\nbaseline_cold_start_s: {baseline[1]:.1f}")
    print(f"baseline_rss_mib: {baseline[5]:.0f}")
    print(f"first_turn_ttft_s: {first_words:.2f}")
    print(f"cold_start_s: {ready:.1f}")
    print(f"rss_mib: {peak:.0f}")


if __name__ == "__main__":
    main()
