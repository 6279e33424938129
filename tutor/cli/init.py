"""`init`: create the data directory and its database, provision the student model and build
the retrieval index."""

from __future__ import annotations

from tutor.bootstrap import open_service
from tutor.config import add_data_dir_argument, add_model_arguments, settings_from_args


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "init", help="create the data directory, provision the model, build the retrieval index"
    )
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    settings = settings_from_args(args)
    service = open_service(settings)
    print(f"database: {settings.database_path}")
    print(f"student model ready: {service.student.version}")
    return 0
