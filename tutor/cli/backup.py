"""`backup DEST`: a consistent copy of the database, safe while the app is running."""

from __future__ import annotations

from pathlib import Path

from tutor.bootstrap import open_store
from tutor.config import add_data_dir_argument, settings_from_args


def register(subcommands) -> None:
    parser = subcommands.add_parser("backup", help="copy the database (consistent even while the app runs)")
    parser.add_argument("destination", type=Path, help="a new file, e.g. tutor-2026-11-23.db")
    add_data_dir_argument(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    store = open_store(settings_from_args(args))
    store.backup(args.destination)
    print(f"backed up {store.db.execute('select count(*) from messages').fetchone()[0]} messages "
          f"to {args.destination}")
    return 0
