"""`users`: accounts and classes from the server's console (actions are audited as 'console').

    python -m tutor users add NAME --role R [--class C] [--password-stdin]
    python -m tutor users list | set-role NAME R | disable NAME | enable NAME
    python -m tutor users reset-password NAME [--password-stdin]
    python -m tutor users export NAME [--out FILE] | delete NAME --yes
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from types import SimpleNamespace
from pathlib import Path

from tutor.accounts import LEARNER, ROLES, AccountService
from tutor.bootstrap import open_store
from tutor.config import add_data_dir_argument, settings_from_args


def register(subcommands) -> None:
    parser = subcommands.add_parser("users", help="add, list and change accounts; export or delete one")
    common = argparse.ArgumentParser(add_help=False)
    add_data_dir_argument(common)
    subparsers = parser.add_subparsers(dest="action", required=True)
    actions = SimpleNamespace(add_parser=functools.partial(subparsers.add_parser, parents=[common]))
    add = actions.add_parser("add", help="a new account; prints a one-time password unless given one")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default=LEARNER)
    add.add_argument("--class", dest="class_name", help="enrol a learner in (or give a teacher) this class")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    actions.add_parser("list", help="every account with its role and classes")
    set_role = actions.add_parser("set-role", help="change someone's role")
    set_role.add_argument("name")
    set_role.add_argument("role", choices=ROLES)
    for action in ("disable", "enable"):
        actions.add_parser(action, help=f"{action} an account (disable also logs it out)").add_argument("name")
    reset = actions.add_parser("reset-password", help="a new (one-time unless given) password")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true")
    export = actions.add_parser("export", help="everything stored about someone, as JSON")
    export.add_argument("name")
    export.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    delete = actions.add_parser("delete", help="delete someone and every row about them")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="required: deletion cannot be undone")
    parser.set_defaults(run=run)


def run(args) -> int:
    store = open_store(settings_from_args(args))
    accounts = AccountService(store)
    password = _read_password() if getattr(args, "password_stdin", False) else None
    if args.action == "add":
        user, one_time = accounts.add_user(None, args.name, args.role, password, args.class_name)
        print(f"added {user.name} ({user.role})" + (f"; one-time password: {one_time}" if one_time else ""))
    elif args.action == "list":
        for user in store.users():
            classes = ", ".join(c.name for c in store.classes_of(user))
            flags = " disabled" if user.disabled else ""
            print(f"{user.name:<20} {user.role:<8}{flags}{'  ' + classes if classes else ''}")
    elif args.action == "set-role":
        print(f"{accounts.set_role(None, args.name, args.role).name} is now {args.role}")
    elif args.action in ("disable", "enable"):
        accounts.set_disabled(None, args.name, args.action == "disable")
        print(f"{args.name} {args.action}d")
    elif args.action == "reset-password":
        one_time = accounts.reset_password(None, args.name, password)
        print(f"new password set for {args.name}" + (f"; one-time password: {one_time}" if one_time else ""))
    elif args.action == "export":
        text = json.dumps(accounts.export_user(None, args.name), indent=2, ensure_ascii=False)
        if args.out:
            args.out.write_text(text)
            print(f"wrote {args.out}")
        else:
            print(text)
    elif args.action == "delete":
        if not args.yes:
            print("error: deleting cannot be undone; add --yes", file=sys.stderr)
            return 2
        accounts.delete_user(None, args.name)
        print(f"deleted {args.name} and every row about them")
    return 0


def _read_password() -> str:
    return sys.stdin.readline().rstrip("\n")
