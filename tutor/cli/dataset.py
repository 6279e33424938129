"""`dataset build`: DPO pairs and KTO examples from logged turns, ratings, rewrites and checks."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tutor.bootstrap import open_store
from tutor.config import MODELS_DIR, add_data_dir_argument, settings_from_args
from tutor.model.registry import Registry
from tutor.training.feedback import DPO_FILE, KTO_FILE, DatasetOptions, build


def register(subcommands) -> None:
    parser = subcommands.add_parser("dataset", help="feedback datasets for RLHF rounds")
    actions = parser.add_subparsers(dest="action", required=True)
    make = actions.add_parser("build", help="write dpo.jsonl and kto.jsonl (TRL's formats) and a manifest")
    make.add_argument("--out", type=Path, help="default: DATA_DIR/datasets/<time>/")
    make.add_argument("--model", default="champion",
                      help="the version the round continues from: its prompt format picks the turns")
    make.add_argument("--no-simulated", action="store_true", help="leave simulated sessions out")
    make.add_argument("--mrbench", action="store_true", help="add MRBench's rated teacher turns as DPO pairs")
    make.add_argument("--planner-pairs", action="store_true",
                      help="add pairs of the planner's words and each sent draft, the one the judge scores "
                      "higher chosen (DPO)")
    make.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    add_data_dir_argument(make)
    make.set_defaults(run=run)


def run(args) -> int:
    settings = settings_from_args(args)
    store = open_store(settings)
    registry = Registry(args.models_dir, store)
    out = args.out or default_out(settings.data_dir)
    options = DatasetOptions(prompt_format=registry.prompt_format(args.model),
                             include_simulated=not args.no_simulated, mrbench=args.mrbench,
                             planner_pairs=args.planner_pairs)
    manifest = build(store, out, options)
    for name in (DPO_FILE, KTO_FILE):
        figures = manifest["files"][name]
        sources = ", ".join(f"{source} {count}" for source, count in figures["by_source"].items()) or "none"
        print(f"{out / name}: {figures['examples']} examples ({figures['rows']} rows; {sources}); "
              f"dropped {figures['dropped'] or 'none'}")
    print(f"data sha256 {manifest['sha256']}")
    return 0


def default_out(data_dir: Path) -> Path:
    return data_dir / "datasets" / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
