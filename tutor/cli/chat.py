"""`chat`: tutor in the terminal through the same service as the web app.

Reads learner messages line by line from standard input and prints each tutor reply.
"""

from __future__ import annotations

import sys

from tutor.bootstrap import open_service
from tutor.config import (
    add_data_dir_argument,
    add_model_arguments,
    add_policy_arguments,
    settings_from_args,
)
from tutor.errors import InvalidInput, TutorError


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "chat", help="tutor in the terminal: learner lines on stdin, tutor replies on stdout"
    )
    parser.add_argument("--problem", required=True, metavar="QID", help="bank problem id")
    parser.add_argument("--learner", default="local-learner", metavar="NAME",
                        help="whose session this is (default local-learner; made if new, without a "
                        "password, so it cannot log in on the web)")
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    add_policy_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    service = open_service(settings_from_args(args), progress=_status)
    learner = service.local_learner(args.learner)
    conversation = service.start_bank_session(learner, args.problem)
    interactive = sys.stdin.isatty()
    print(f"Problem {conversation.problem.id}: {conversation.problem.question}")
    _status(f"(conversation {conversation.id}; model {service.student.version}; end with Ctrl-D)")
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return 0
        try:
            print("tutor> ", end="", flush=True)
            shown = ""
            for reply in service.reply(conversation, line):
                # exactly what the learner is shown: a reply only ever grows
                print(reply.text[len(shown):], end="", flush=True)
                shown = reply.text
            print(flush=True)
        except InvalidInput as error:
            print(f"\n(not sent: {error})", flush=True)
        except TutorError as error:
            print(f"\n(error: {error})", flush=True)


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
