"""Child-style scripts through the tutor, for reading and for blind rating.

    python -m bench.transcripts --student-model planner --out planner.jsonl
    python -m bench.transcripts --out served.jsonl            # the served champion
    python -m bench.transcripts --blind planner.jsonl served.jsonl --out blind.jsonl --key key.json
    python -m bench.transcripts --score ratings-1.jsonl ratings-2.jsonl --key key.json --out scores.json

Each script of `bench/child_scripts.json` goes through the same service as `python -m tutor chat`
(one fresh session per script); every reply is written with the problem, the learner's line and
what the tutor said before. `--blind` mixes the replies of two runs in a random order without
their labels (the key goes to a separate file), so a rater cannot tell the tutors apart.
`--score` reads raters' JSON lines (`{"id", "rating", "why"}`, bench/rating_rubric.md) against
the key: each run's mean rating (each reply's mean over raters), its share rated 1–2, and its
weakest replies.
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


def score(mixed: list[dict], key: dict, ratings: list[list[dict]], runs: list[str], weakest: int = 3) -> dict:
    """Each run's mean rating over its replies (a reply's rating: its mean over the raters who
    rated it), how many replies were rated, the share rated 2 or less, and its weakest replies."""
    by_id: dict[int, list[float]] = {}
    for rater in ratings:
        for row in rater:
            if 1 <= row["rating"] <= 5:
                by_id.setdefault(int(row["id"]), []).append(row["rating"])
    rows = {row["id"]: row for row in mixed}
    report = {}
    for label, run in enumerate(runs):
        rated = sorted(((sum(r) / len(r), number) for number, r in by_id.items() if key[str(number)] == label))
        if not rated:
            continue
        report[run] = {
            "replies": len(rated), "mean": round(sum(mean for mean, _ in rated) / len(rated), 2),
            "rated_2_or_less": round(sum(mean <= 2 for mean, _ in rated) / len(rated), 3),
            "weakest": [{"rating": mean, "learner": rows[number]["learner"], "reply": rows[number]["reply"]}
                        for mean, number in rated[:weakest]],
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_dir_argument(parser)
    add_model_arguments(parser)
    add_policy_arguments(parser)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--blind", type=Path, nargs="+", metavar="RUN", help="mix these runs' replies, unlabelled")
    parser.add_argument("--key", type=Path, help="with --blind: where the key goes; with --score: the key to read")
    parser.add_argument("--score", type=Path, nargs="+", metavar="RATINGS", help="raters' JSON lines to score")
    parser.add_argument("--mixed", type=Path, help="with --score: the blind file rated (default: the key's name "
                        "without .key.json)")
    args = parser.parse_args(argv)
    if args.score:
        key = json.loads(args.key.read_text())
        mixed_path = args.mixed or args.key.with_name(args.key.name.replace(".key.json", ".jsonl"))
        mixed = [json.loads(line) for line in mixed_path.read_text().splitlines()]
        ratings = [[json.loads(line) for line in path.read_text().splitlines() if line.strip()] for path in args.score]
        report = score(mixed, key["key"], ratings, key["runs"])
        args.out.write_text(json.dumps(report, indent=1))
        for run, figures in report.items():
            print(f"{run}: mean {figures['mean']} over {figures['replies']} replies, "
                  f"{figures['rated_2_or_less']:.0%} rated 2 or less")
        return 0
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
