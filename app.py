"""Socratic tutor web app: `python app.py --help` lists the settings."""

from __future__ import annotations

import argparse
import logging
import threading

import uvicorn

from tutor.accounts import AccountLimits, AccountService
from tutor.bootstrap import open_rounds, open_service
from tutor.config import (
    add_account_arguments,
    add_data_dir_argument,
    add_model_arguments,
    add_policy_arguments,
    add_server_arguments,
    secure_cookies,
    settings_from_args,
)
from tutor.ui.web import ServerLimits, build_app

log = logging.getLogger("tutor.app")
RETENTION_CHECK_S = 3600
SCHEDULE_CHECK_S = 300


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the Socratic tutor web app.")
    add_server_arguments(parser)
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    add_policy_arguments(parser)
    add_account_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    settings = settings_from_args(args)
    service = open_service(settings)
    accounts = AccountService(service.store, AccountLimits(session_hours=args.session_hours))
    print(f"Data directory: {settings.data_dir}; student model: {service.student.version}")
    print_first_accounts(accounts.ensure_first_admin(demo=not args.no_demo, admin_name=args.admin_name))
    keep_applying_retention(accounts)
    rounds = open_rounds(settings, service, accounts)
    if rounds is not None:
        keep_checking_schedule(rounds)
    app = build_app(service, accounts, ServerLimits(args.concurrency, args.queue_size, args.messages_per_minute),
                    rounds, secure_cookies=secure_cookies(args))
    print(f"Open {args.public_url.rstrip('/') or f'http://{settings.host}:{settings.port}'}/ and log in.", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


def print_first_accounts(created: list[tuple[str, str, str]]) -> None:
    if not created:
        return
    print("\nFirst run: these accounts were created. The passwords are shown only now.")
    for role, name, password in created:
        note = " (one-time: choose your own at first login)" if role == "admin" else ""
        print(f"  {role:8} {name:14} password: {password}{note}")
    print(flush=True)


def keep_applying_retention(accounts: AccountService) -> None:
    """Purge transcripts past the retention setting now and every hour after."""
    def apply() -> None:
        purged = accounts.apply_retention()
        if purged:
            log.info("retention: purged the transcripts of %d conversations", purged)
    every(RETENTION_CHECK_S, apply, "retention purge")


def keep_checking_schedule(rounds) -> None:
    """Start a scheduled round when one is due (the schedule is in the database)."""
    every(SCHEDULE_CHECK_S, rounds.tick, "scheduled round")


def every(seconds: float, job, what: str) -> None:
    """Run `job` now and every `seconds` after, in a daemon timer; a failure is logged, not fatal."""
    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("%s failed", what)
        timer = threading.Timer(seconds, run)
        timer.daemon = True
        timer.start()
    run()


if __name__ == "__main__":
    main()
