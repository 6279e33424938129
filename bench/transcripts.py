"""Child-style scripts through the tutor, for reading and for blind rating.

    python -m bench.transcripts --student-model planner --out planner.jsonl
    python -m bench.transcripts --out served.jsonl            # the served champion
    python -m bench.transcripts --blind planner.jsonl served.jsonl --out blind.jsonl --key key.json

Each script of `bench/child_scripts.json` goes through the same service as `python -m tutor chat`
(one fresh session per script); every reply is written with the problem, the learner's line and
what the tutor said before. `--blind` mixes the replies of two runs in a random order without
their labels (the key goes to a separate file), so a rater cannot tell the tutors apart.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from tutor.bootstrap import open_service
from tutor.config import add_data_dir_argument, add_model_arguments, add_policy_arguments, settings_from_args

SCRIPTS = Path(__file__).with_name("child_scripts.json")


def transcripts(service, scripts: dict[str, list[str]]) -> list[dict]:
    """Each script in a fresh session: a row per reply."""
    rows = []
    for problem_id, lines in scripts.items():
        learner = service.local_learner(f"script-{problem_id}-{service.student.version}")
        conversation = service.start_bank_session(learner, problem_id)
        said: list[dict] = []
        for index, line in enumerate(lines):
            *_, last = service.reply(conversation, line)
            rows.append({"problem": problem_id, "question": conversation.problem.question, "turn": index,
                         "before": list(said), "learner": line, "tutor": last.text,
                         "model_version": last.message.model_version})
            said += [{"learner": line}, {"tutor": last.text}]
    return rows


def blind(runs: list[list[dict]], seed: int = 0) -> tuple[list[dict], dict]:
    """The replies of several runs, shuffled and numbered, and the key from number to run."""
    rows = [(label, row) for label, run in enumerate(runs) for row in run]
    random.Random(seed).shuffle(rows)
    mixed, key = [], {}
    for number, (label, row) in enumerate(rows, 1):
        mixed.append({"id": number, "problem": row["question"], "conversation_so_far": row["before"],
                      "learner": row["learner"], "reply": row["tutor"]})
        key[number] = label
    return mixed, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    add_policy_arguments(parser)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--blind", type=Path, nargs="+", metavar="RUN", help="mix these runs' replies, unlabelled")
    parser.add_argument("--key", type=Path, help="with --blind: where the key goes")
    args = parser.parse_args(argv)
    if args.blind:
        runs = [[json.loads(line) for line in path.read_text().splitlines()] for path in args.blind]
        mixed, key = blind(runs)
        args.out.write_text("".join(json.dumps(row) + "\n" for row in mixed))
        (args.key or args.out.with_suffix(".key.json")).write_text(
            json.dumps({"runs": [str(p) for p in args.blind], "key": key}, indent=1))
        print(f"{len(mixed)} replies, blind: {args.out}")
        return 0
    service = open_service(settings_from_args(args), progress=lambda text: print(text, file=sys.stderr))
    rows = transcripts(service, json.loads(SCRIPTS.read_text())["scripts"])
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    carried = sum(row["model_version"] not in ("planner",) for row in rows)
    print(f"{len(rows)} replies from {service.student.version} ({carried} in the model's words): {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
