"""`dialogues import`: convert MathDial-schema JSONL into the bank files in `dialogues/`."""

from __future__ import annotations

import json
from pathlib import Path

from tutor.config import DIALOGUES_DIR, add_data_dir_argument
from tutor.domain.dialogues import write_jsonl
from tutor.domain.mathdial import apply_repairs, read_mathdial


def register(subcommands) -> None:
    parser = subcommands.add_parser("dialogues", help="manage the seed dialogues and problem bank")
    actions = parser.add_subparsers(dest="action", required=True)
    importer = actions.add_parser(
        "import", help="convert a MathDial-schema JSONL file into dialogues/problems.jsonl "
        "and dialogues/mathdial.jsonl"
    )
    importer.add_argument("source", type=Path, help="MathDial-schema JSONL file")
    importer.add_argument("--out", type=Path, default=DIALOGUES_DIR, help="output folder")
    importer.add_argument(
        "--repairs", type=Path, default=DIALOGUES_DIR / "repairs.json",
        help="hand repairs of malformed solutions, and problems to exclude, with reasons",
    )
    add_data_dir_argument(importer)  # every command takes it; this one writes only dialogues/
    importer.set_defaults(run=run_import)


def run_import(args) -> int:
    problems, dialogues = {}, []
    for problem, dialogue in read_mathdial(args.source):
        problems.setdefault(problem.id, problem)
        dialogues.append(dialogue)
    if args.repairs.exists():
        problems = apply_repairs(problems, json.loads(args.repairs.read_text(encoding="utf-8")))
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "problems.jsonl", (p.to_json() for p in problems.values()))
    write_jsonl(args.out / "mathdial.jsonl", (d.to_json() for d in dialogues))
    print(f"{len(problems)} problems, {len(dialogues)} dialogues written to {args.out}")
    return 0
