"""`eval --quick`: guard false positives on human teacher turns, our leak and question rates."""

from __future__ import annotations

from pathlib import Path

from tutor.config import DIALOGUES_FILE, PROBLEMS_FILE
from tutor.domain.dialogues import read_dialogues
from tutor.domain.problems import ProblemBank
from tutor.errors import InvalidInput
from tutor.evaluation.quick import run_quick


def register(subcommands) -> None:
    parser = subcommands.add_parser("eval", help="measure the tutor on dialogue files")
    parser.add_argument("--quick", action="store_true",
                        help="guard and planner only, on the seed dialogues (seconds)")
    parser.add_argument("--dialogues", type=Path, default=DIALOGUES_FILE,
                        help="dialogues in the project's JSONL format (default: dialogues/)")
    parser.add_argument("--verbose", action="store_true", help="show human turns the guard blocks")
    parser.set_defaults(run=run)


def run(args) -> int:
    if not args.quick:
        raise InvalidInput("Only `eval --quick` exists so far; the full harness is a later issue.")
    report = run_quick(list(read_dialogues(args.dialogues)), ProblemBank.load(PROBLEMS_FILE))
    print(report.table())
    if args.verbose:
        print("\nhuman turns the guard blocks (examples):")
        for example in report.blocked_examples:
            print(f"  {example}")
    return 0
