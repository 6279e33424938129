"""`judge train|score`: the pedagogical judge — train it in a worker, report it the way the
BEA 2025 shared task does."""

from __future__ import annotations

import json
from pathlib import Path

from tutor.bootstrap import open_store
from tutor.config import add_data_dir_argument, settings_from_args
from tutor.judge.data import MRBENCH_FILE
from tutor.judge.registry import JUDGES_DIR
from tutor.judge.train import JudgeSettings


def register(subcommands) -> None:
    parser = subcommands.add_parser("judge", help="the pedagogical judge: train it, score it on MRBench")
    actions = parser.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="train a judge version in a worker (progress, cancel)")
    defaults = JudgeSettings()
    train.add_argument("--epochs", type=float, default=defaults.epochs)
    train.add_argument("--lr", type=float, default=defaults.learning_rate)
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--max-steps", type=int, default=defaults.max_steps, help="stop early (smoke runs)")
    train.add_argument("--mathdial-limit", type=int, default=600, help="MathDial teacher turns to add")
    train.add_argument("--mrbench", type=Path, default=MRBENCH_FILE)
    train.add_argument("--base", type=Path, help="a BERT-style encoder folder (default: the packaged MiniLM)")
    train.add_argument("--from", dest="parent", metavar="VERSION",
                       help="refit only the heads, on this judge's encoder (minutes instead of ~25)")
    train.add_argument("--version", help="name of the new version (default: the next jN)")
    train.add_argument("--judges-dir", type=Path, default=JUDGES_DIR)
    train.add_argument("--promote", action="store_true", help="make it the judge the product uses")
    train.add_argument("--detach", action="store_true", help="start the worker and return")
    add_data_dir_argument(train)
    train.set_defaults(run=run_train)
    score = actions.add_parser("score", help="macro F1 and accuracy per dimension, pairwise accuracy, "
                               "beside the frozen-embedding baseline")
    score.add_argument("--mrbench", type=Path, default=MRBENCH_FILE, help="a file in MRBench's format")
    score.add_argument("--split", choices=("train", "validation"),
                       help="our split of it, by conversation (default: all of it)")
    score.add_argument("--judge", default="champion", help="a judge version (default: the one in use)")
    score.add_argument("--judges-dir", type=Path, default=JUDGES_DIR)
    score.add_argument("--no-baseline", action="store_true", help="skip the baseline (it embeds the training split)")
    score.add_argument("--json", type=Path, help="also write the figures here")
    score.set_defaults(run=run_score)


def run_train(args) -> int:
    from tutor.cli.train import follow

    settings = settings_from_args(args)
    store = open_store(settings)
    train = JudgeSettings(epochs=args.epochs, learning_rate=args.lr, batch_size=args.batch_size,
                          max_steps=args.max_steps)
    config = {"judges_dir": str(args.judges_dir), "base": str(args.base) if args.base else None, "mrbench": str(args.mrbench), "version": args.version,
              "promote": args.promote, "parent": args.parent, "mathdial_limit": args.mathdial_limit, "train": train.to_json()}
    return follow(store, settings.data_dir, "judge", config, args.detach)


def run_score(args) -> int:
    from tutor.judge.data import mrbench_rows, read_mrbench
    from tutor.judge.registry import load_judge
    from tutor.judge.scoring import baseline_predictor, evaluate, judge_predictor, table

    judge = load_judge(args.judge, args.judges_dir)
    conversations = read_mrbench(args.mrbench)
    rows = mrbench_rows(conversations, args.split)
    print(f"{len(rows)} responses in {len({r.conversation for r in rows})} conversations "
          f"({args.split or 'all'} of {args.mrbench.name}); judge {judge.version}")
    reports = [evaluate(f"judge {judge.version}", rows, judge_predictor(judge))]
    if not args.no_baseline:
        from tutor.model.retrieval import MiniLMEmbedder

        # the baseline learns from our training split, as the judge did
        train = mrbench_rows(read_mrbench(MRBENCH_FILE), "train")
        reports.append(evaluate("baseline (frozen MiniLM + LR)", rows, baseline_predictor(train, MiniLMEmbedder())))
    print(table(reports))
    if args.json:
        args.json.write_text(json.dumps({r.name: r.to_json() for r in reports}, indent=2) + "\n", encoding="utf-8")
    return 0
