"""`python -m tutor.training.worker RUN --data-dir DIR`: the process that trains one run."""

from __future__ import annotations

import argparse
import sys
import traceback

from tutor.config import add_data_dir_argument, default_data_dir
from tutor.judge.runs import JUDGE_KIND
from tutor.storage.store import Store
from tutor.training.runs import execute
from tutor.training.sft import Cancelled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tutor.training.worker")
    parser.add_argument("run", type=int)
    add_data_dir_argument(parser)
    args = parser.parse_args(argv)
    data_dir = (args.data_dir or default_data_dir()).expanduser()
    store = Store(data_dir / "tutor.db")
    run = store.training_run(args.run)
    try:
        version = execute(store, run, data_dir)
    except Cancelled as stopped:  # nothing was saved or registered: the champion serves on
        store.update_training_run(run.id, status="cancelled", message=str(stopped))
        return 1
    except Exception as error:  # the run's row says what went wrong; the log has the rest
        traceback.print_exc()
        store.update_training_run(run.id, status="failed", message=f"{type(error).__name__}: {error}")
        return 1
    alias = "champion" if run.config.get("promote") else "candidate"
    if run.kind == JUDGE_KIND:
        alias = "the judge in use" if run.config.get("promote") else "a judge version"
    gate = store.training_run(run.id).gate
    if gate is None:
        verdict = ""
    else:
        from tutor.evaluation.gate import refusal

        verdict = "; the gate passed" if gate["passed"] else f"; the gate failed: {refusal(gate)}"
    store.update_training_run(run.id, status="done", version=version,
                              message=f"registered {version} as {alias}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
