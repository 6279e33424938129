"""Training runs: a run is a database row and a worker process.

Whoever starts a run (the CLI now, the admin page later) never trains in its own process: it
stores the run's configuration, starts `python -m tutor.training.worker RUN`, and reads the
progress (step, loss, ETA) the worker writes back to the same row. The worker registers the
trained version in the model registry as the `candidate` (or `champion` when asked).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from tutor.config import MODELS_DIR, PROJECT_ROOT
from tutor.domain.prompting import MOVES_FORMAT
from tutor.model.registry import Registry
from tutor.storage.store import Store, TrainingRun
from tutor.training.distill import DATASET_NAME
from tutor.training.sft import TrainResult, TrainSettings

FINISHED = ("done", "failed")


def default_dataset(data_dir: Path) -> Path:
    return data_dir / "distill" / DATASET_NAME


def start(store: Store, data_dir: Path, kind: str, config: dict) -> tuple[TrainingRun, subprocess.Popen]:
    """Record the run and start its worker; returns at once."""
    run = store.create_training_run(kind, config)
    logs = data_dir / "runs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"run-{run.id}.log", "w", encoding="utf-8")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tutor.training.worker", str(run.id), "--data-dir", str(data_dir)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_ROOT,
    )
    log.close()
    store.update_training_run(run.id, pid=process.pid)
    return store.training_run(run.id), process


def wait(store: Store, run_id: int, process: subprocess.Popen | None = None,
         on_update: Callable[[TrainingRun], None] = lambda _: None, poll_s: float = 1.0) -> TrainingRun:
    """Follow a run until it ends, calling `on_update` whenever its row changes."""
    seen = None
    while True:
        run = store.training_run(run_id)
        if run.updated != seen:
            seen = run.updated
            on_update(run)
        if run.status in FINISHED:
            return run
        if process is not None and process.poll() is not None:
            run = store.training_run(run_id)
            if run.status not in FINISHED:  # died without a word (killed, out of memory)
                store.update_training_run(run_id, status="failed",
                                          message=f"the worker exited with code {process.returncode}")
                run = store.training_run(run_id)
            on_update(run)
            return run
        time.sleep(poll_s)


def execute(store: Store, run: TrainingRun, data_dir: Path) -> str:
    """Train as the run's configuration says, register the result; returns its version."""
    from tutor.model.embedded import provision_embedded
    from tutor.training.sft import train

    config = run.config
    base = Path(config["base"]) if config.get("base", "embedded") != "embedded" else provision_embedded(data_dir, print)
    dataset = Path(config.get("dataset") or default_dataset(data_dir))
    if not dataset.exists():
        raise FileNotFoundError(f"No dataset at {dataset}: run `python -m tutor distill` first.")
    registry = Registry(Path(config.get("models_dir") or MODELS_DIR), store)
    version = config.get("version") or registry.next_version()
    out = registry.root / version
    if out.exists():
        raise FileExistsError(f"{out} exists already: choose another --version.")
    settings = TrainSettings.from_json(config.get("train", {}))
    teacher = Path(config["teacher"]) if config.get("teacher") else None
    store.update_training_run(run.id, status="running", version=version)
    result = train(base, dataset, out, settings,
                   on_progress=lambda progress: store.update_training_run(run.id, **progress),
                   teacher_path=teacher)
    manifest = build_manifest(base, dataset, run.kind, settings, result, run_id=run.id,
                              parent=config.get("parent"), teacher=config.get("teacher"))
    registry.register(version, manifest, alias="champion" if config.get("promote") else "candidate")
    return version


def build_manifest(base: Path, dataset: Path, kind: str, settings: TrainSettings, result: TrainResult, *,
                   run_id: int | None = None, parent: str | None = None, teacher: str | None = None) -> dict:
    """What a version's manifest says of where it came from (evaluation figures come later)."""
    report_file = dataset.parent / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    return {
        "base": base.name,
        "parent": parent,
        # datasets from before the decision format have no prompt_format in their report
        "prompt_format": (report or {}).get("prompt_format", MOVES_FORMAT),
        "kind": kind,
        "run": run_id,
        "data": {
            "file": dataset.name,
            "sha256": hashlib.sha256(dataset.read_bytes()).hexdigest(),
            "distill": report,
        },
        "training": {"config": settings.to_json(), "teacher": teacher, **result.to_json()},
        "evaluation": {},
    }
