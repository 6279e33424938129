"""`init`: create the data directory and its database, and provision the student model."""

from __future__ import annotations

from tutor.bootstrap import open_store
from tutor.config import add_data_dir_argument, add_model_arguments, settings_from_args
from tutor.model.loading import load_backend


def register(subcommands) -> None:
    parser = subcommands.add_parser("init", help=__doc__.split(":", 1)[1].strip())
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    settings = settings_from_args(args)
    open_store(settings)
    print(f"database: {settings.database_path}")
    backend = load_backend(
        settings.student_model,
        data_dir=settings.data_dir,
        adapter=settings.adapter,
        api_key=settings.api_key,
    )
    print(f"student model ready: {backend.version}")
    return 0
