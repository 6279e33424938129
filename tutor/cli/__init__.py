"""`python -m tutor`: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import sys

from tutor.cli import backup, chat, dataset, dialogues, distill, evaluate, init, judge, models, problems, simulate, train, users
from tutor.errors import TutorError

COMMANDS = (init, chat, users, backup, dialogues, problems, distill, simulate, dataset, train, judge, models, evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tutor", description=__doc__)
    subcommands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except TutorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
