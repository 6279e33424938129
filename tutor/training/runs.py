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
import shutil
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
from tutor.training.sft import Cancelled, TrainResult, TrainSettings

FINISHED = ("done", "failed", "cancelled")
GATE_EVALUATION = "gate_evaluation"  # a manifest's figures on the gate's slice


def default_dataset(data_dir: Path) -> Path:
    return data_dir / "distill" / DATASET_NAME


def start(store: Store, data_dir: Path, kind: str, config: dict,
          exclusive: bool = False) -> tuple[TrainingRun, subprocess.Popen]:
    """Record the run and start its worker; returns at once. `exclusive`: refuse while another
    run is under way (rounds: one at a time)."""
    run = store.create_training_run(kind, config, exclusive)
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


def reap(store: Store) -> None:
    """Runs whose worker is gone without a word (killed, out of memory, the machine restarted)
    are marked failed, or cancelled if that was asked: they hold no one up."""
    for run in store.training_runs(limit=20):
        if run.active and run.pid and not alive(run.pid):
            store.update_training_run(run.id, **_ended(run, "the worker stopped without a word"))


def _ended(run: TrainingRun, why: str) -> dict:
    """The row of a run whose worker is gone: cancelled if an admin asked, else failed."""
    if run.cancel_requested:
        return {"status": "cancelled", "message": "cancelled; nothing was registered" if not run.gate
                else "cancelled after the candidate was registered"}
    return {"status": "failed", "message": why}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child nobody waited for is a zombie: it has ended
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


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
            if run.status not in FINISHED:  # died without a word (killed, out of memory) or was stopped
                store.update_training_run(run_id, **_ended(run, f"the worker exited with code {process.returncode}"))
                run = store.training_run(run_id)
            on_update(run)
            return run
        time.sleep(poll_s)


# A round fine-tunes the champion gently, in the adapter's top 8 of the embedded student's 30
# layers: the layers below run once for policy and reference, the backward pass stops there
# (bench/train.py: a 500-pair DPO round in ~20 min on 2 cores).
ROUND_TRAINING = TrainSettings(learning_rate=5e-5, upper_layers=8)


def round_config(*, base: str = "embedded", models_dir: Path = MODELS_DIR, dataset: Path | None = None,
                 include_simulated: bool = True, mrbench: bool = False, train: TrainSettings | None = None,
                 planner_pairs: bool = False, beta: float = 0.1, gate_dialogues: int | None = None,
                 gate_attacks: int = 40, gate_mrbench: int | None = None, version: str | None = None) -> dict:
    """A round's configuration, as the CLI, the admin page and the schedule store it."""
    train = train or ROUND_TRAINING
    return {"base": base, "models_dir": str(models_dir), "dataset": str(dataset) if dataset else None,
            "include_simulated": include_simulated, "mrbench": mrbench, "planner_pairs": planner_pairs,
            "train": train.to_json(),
            "preference": {"beta": beta},
            "gate": {"limit": gate_dialogues, "attacks": gate_attacks, "mrbench": gate_mrbench}, "version": version}


def base_path(config: dict, data_dir: Path) -> Path:
    from tutor.model.embedded import provision_embedded

    return Path(config["base"]) if config.get("base", "embedded") != "embedded" else provision_embedded(data_dir, print)


def execute(store: Store, run: TrainingRun, data_dir: Path) -> str:
    """Train as the run's configuration says, register the result; returns its version."""
    from tutor.judge.runs import JUDGE_KIND, execute_judge
    from tutor.training.preference import ROUNDS

    if run.kind in ROUNDS:
        return execute_round(store, run, data_dir)
    if run.kind == JUDGE_KIND:
        return execute_judge(store, run, data_dir)
    from tutor.training.sft import train

    config = run.config
    base = base_path(config, data_dir)
    dataset = Path(config.get("dataset") or default_dataset(data_dir))
    if not dataset.exists():
        raise FileNotFoundError(f"No dataset at {dataset}: run `python -m tutor distill` first.")
    registry = Registry(Path(config.get("models_dir") or MODELS_DIR), store)
    version = config.get("version") or registry.next_version()
    out = registry.root / version
    if out.exists():
        raise FileExistsError(f"{out} exists already: choose another --version.")
    cancelled = lambda: store.training_run(run.id).cancel_requested  # noqa: E731
    settings = TrainSettings.from_json(config.get("train", {}))
    teacher = Path(config["teacher"]) if config.get("teacher") else None
    parent = registry.resolve(config["parent"]) if config.get("parent") else None
    store.update_training_run(run.id, status="running", version=version)
    result = train(base, dataset, out, settings,
                   on_progress=lambda progress: store.update_training_run(run.id, **progress),
                   teacher_path=teacher, should_stop=cancelled, parent_adapter=parent)
    manifest = build_manifest(base, dataset, run.kind, settings, result, run_id=run.id,
                              parent=config.get("parent"), teacher=config.get("teacher"))
    registry.register(version, manifest, alias="champion" if config.get("promote") else "candidate")
    return version


def execute_round(store: Store, run: TrainingRun, data_dir: Path) -> str:
    """An RLHF round: build the feedback dataset, train DPO or KTO from the champion, register
    the candidate, measure it against the champion at the gate. The champion keeps serving
    whatever happens; promotion is an admin's decision (refused if the gate failed)."""
    from tutor.evaluation.gate import GateSlice
    from tutor.training.feedback import (CONDITIONAL_FILE, DPO_FILE, IMITATION_FILE, KTO_FILE, DatasetOptions, build,
                                         build_conditional, build_imitation)
    from tutor.training.preference import (CONDITIONAL, DPO, SELF_IMITATION, SUPERVISED, PreferenceSettings,
                                           train_preference)
    from tutor.training.sft import train

    config = run.config
    registry = Registry(Path(config.get("models_dir") or MODELS_DIR), store)
    parent = config.get("parent") or registry.alias("champion")
    champion = registry.resolve(parent) if parent else None
    dataset_dir = Path(config.get("dataset") or data_dir / "rounds" / f"run-{run.id}")
    store.update_training_run(run.id, status="running", message="building the dataset")
    if not config.get("dataset"):
        options = DatasetOptions(prompt_format=registry.prompt_format(parent or "base"),
                                 include_simulated=config.get("include_simulated", True),
                                 mrbench=config.get("mrbench", False),
                                 planner_pairs=config.get("planner_pairs", False))
        if run.kind == SELF_IMITATION:  # the critic: the checks (passed already) and the judge
            from tutor.judge.registry import load_judge

            build_imitation(store, dataset_dir, options, load_judge())
        elif run.kind == CONDITIONAL:
            build_conditional(store, dataset_dir, options)
        else:
            build(store, dataset_dir, options)
    data = json.loads((dataset_dir / "manifest.json").read_text(encoding="utf-8"))
    file = dataset_dir / {DPO: DPO_FILE, SELF_IMITATION: IMITATION_FILE, CONDITIONAL: CONDITIONAL_FILE}.get(
        run.kind, KTO_FILE)
    examples = data["files"][file.name]["examples"]
    if examples < config.get("min_examples", 1):
        raise ValueError(f"only {examples} {run.kind.upper()} examples; the round needs "
                         f"{config.get('min_examples', 1)}")
    base = base_path(config, data_dir)
    version = config.get("version") or registry.next_version()
    out = registry.root / version
    out.mkdir(parents=True, exist_ok=False)  # reserved: FileExistsError if taken
    settings = TrainSettings.from_json(config.get("train", {}))
    preference = PreferenceSettings(**config.get("preference", {}))
    store.update_training_run(run.id, version=version,
                              message=f"training {run.kind.upper()} on {examples} examples from {parent or 'the base'}"
                              + (f" (the reference: {parent or 'the base'})" if run.kind not in SUPERVISED else ""))
    cancelled = lambda: store.training_run(run.id).cancel_requested  # noqa: E731
    try:
        progress = lambda update: store.update_training_run(run.id, **update)  # noqa: E731
        if run.kind in SUPERVISED:  # the champion's adapter trained on (SFT), on its kept drafts or rated turns
            result = train(base, file, out, settings, on_progress=progress, should_stop=cancelled,
                           parent_adapter=champion)
        else:
            result = train_preference(run.kind, base, champion, file, out, settings, preference,
                                      on_progress=progress, should_stop=cancelled)
        if cancelled():  # asked after the last step: still nothing is registered
            raise Cancelled("cancelled after training; nothing was registered")
        manifest = build_manifest(base, file, run.kind, settings, result, run_id=run.id, parent=parent,
                                  report=data, prompt_format=registry.prompt_format(parent or "base"))
        if run.kind not in SUPERVISED:
            manifest["training"]["preference"] = preference.to_json()
        registry.register(version, manifest, alias="candidate")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        if not config.get("dataset"):  # learners' words leave the disk with the round (the hash stays)
            for name in (DPO_FILE, KTO_FILE, IMITATION_FILE, CONDITIONAL_FILE):
                (dataset_dir / name).unlink(missing_ok=True)
    store.update_training_run(run.id, message=f"registered {version}; measuring it at the gate")
    gate_slice = GateSlice(**config.get("gate", {}))
    store.update_training_run(run.id, gate=run_gate(registry, base, parent, version, gate_slice, data_dir))
    return version


def run_gate(registry: Registry, base: Path, champion: str | None, candidate: str, gate_slice,
             data_dir: Path) -> dict:
    """Measure the candidate (and the champion, unless its manifest holds figures for the same
    slice, engine and measuring code) on the serving engine and judge; the figures go into each
    version's manifest."""
    from tutor.config import DIALOGUES_DIR
    from tutor.errors import InvalidInput, ModelError
    from tutor.evaluation.gate import GATE, figure, judge, measure, measuring_code
    from tutor.judge.registry import load_judge
    from tutor.model.loading import load_backend

    served = load_backend(str(base), data_dir=data_dir, adapter=registry.resolve(candidate))
    try:
        reader = load_judge()
        reader.load()
    except (InvalidInput, ModelError):  # no judge that loads: its rows are "not measured"
        reader = None
    # learners read what the serving engine writes: the gate measures that, with this code (and judge)
    measured_by = {"gate_slice": gate_slice.to_json(), "engine": served.engine, "code": measuring_code(),
                   "judge": reader.version if reader else None}
    measured = {}
    for version in (champion, candidate):
        recorded = registry.manifest(version).get(GATE_EVALUATION, {}) if version else {}
        if (version != candidate and all(recorded.get(key) == value for key, value in measured_by.items())
                and recorded["figures"].get("per_dialogue")
                and all(figure(recorded["figures"], item.metric) is not None for item in GATE
                        if "judge" not in item.metric or reader)):
            measured[version] = recorded["figures"]
            continue
        student = served.with_adapter(registry.resolve(version) if version else None)
        measured[version] = measure(student, DIALOGUES_DIR, gate_slice, judge=reader)
        if version:
            registry.record_evaluation(version, {"figures": measured[version], **measured_by}, key=GATE_EVALUATION)
    verdict = judge(measured[champion], measured[candidate]) | {
        "champion": champion or "base", "candidate": candidate, "slice": gate_slice.to_json(),
        "engine": served.engine, "code": measured_by["code"]}
    registry.record_evaluation(candidate, verdict, key="gate")  # before and after, in its manifest
    return verdict


def build_manifest(base: Path, dataset: Path, kind: str, settings: TrainSettings, result: TrainResult, *,
                   run_id: int | None = None, parent: str | None = None, teacher: str | None = None,
                   report: dict | None = None, prompt_format: str | None = None) -> dict:
    """What a version's manifest says of where it came from (evaluation figures come later)."""
    report_file = dataset.parent / "report.json"
    if report is None and report_file.exists():
        report = json.loads(report_file.read_text())
    return {
        "base": base.name,
        "parent": parent,
        # datasets from before the decision format have no prompt_format in their report
        "prompt_format": prompt_format or (report or {}).get("prompt_format", MOVES_FORMAT),
        "kind": kind,
        "run": run_id,
        "data": {
            "file": dataset.name,
            "sha256": hashlib.sha256(dataset.read_bytes()).hexdigest(),
            "distill" if kind in ("sft", "kd") else "feedback": report,
        },
        "training": {"config": settings.to_json(), "teacher": teacher, **result.to_json()},
        "evaluation": {},
    }
