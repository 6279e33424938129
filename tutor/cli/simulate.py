"""`simulate`: scripted learners work training problems with the served student (labels for rounds)."""

from __future__ import annotations

import sys

from tutor.bootstrap import open_service
from tutor.config import DIALOGUES_DIR, add_data_dir_argument, add_model_arguments, settings_from_args
from tutor.evaluation.data import load_eval_dialogues, split
from tutor.evaluation.simulate import LEARNERS, simulate


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "simulate", help="scripted learners work training-split problems with the served student; "
        "their failed drafts label preference pairs (marked simulated)")
    parser.add_argument("--sessions", type=int, default=50, help="how many sessions (default 50)")
    parser.add_argument("--skip", type=int, default=0, help="start after this many training dialogues")
    parser.add_argument("--turns", type=int, default=5, help="tutor turns per session at most (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learner", choices=sorted(LEARNERS), default="scripted",
                        help="scripted (default), or replay: each dialogue's own learner messages in order")
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    service = open_service(settings_from_args(args), progress=_status)
    pairs = split(load_eval_dialogues(DIALOGUES_DIR), "train")[args.skip:args.skip + args.sessions]
    sessions = simulate(service, pairs, args.turns, args.seed, progress=_status, learner=args.learner)
    turns = sum(1 for c in sessions for m in service.transcript(c) if m.role == "tutor")
    failed = sum(1 for c in sessions for m in service.transcript(c)
                 if m.role == "tutor" and not ((m.planner_state or {}).get("guard") or {}).get("passed", True))
    print(f"{len(sessions)} simulated sessions, {turns} tutor turns, {failed} drafts not sent whole "
          f"(model {service.student.version})")
    return 0


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
