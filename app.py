"""Socratic tutor web app: `python app.py --help` lists the settings."""

from __future__ import annotations

import argparse
import logging

from tutor.bootstrap import open_service
from tutor.config import (
    add_data_dir_argument,
    add_model_arguments,
    add_policy_arguments,
    add_server_arguments,
    settings_from_args,
)
from tutor.ui.learner import build_learner_page


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the Socratic tutor web app.")
    add_server_arguments(parser)
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    add_policy_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(parse_args(argv))
    service = open_service(settings)
    print(f"Data directory: {settings.data_dir}; student model: {service.student.version}")
    page = build_learner_page(service)
    page.queue(default_concurrency_limit=4).launch(
        server_name=settings.host, server_port=settings.port, show_error=False
    )


if __name__ == "__main__":
    main()
