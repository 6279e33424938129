"""`eval`: measure the tutor on a dialogue file (MathDial's schema or the project's).

`eval --quick`: the guard and the planner alone on the seed dialogues, in seconds.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from functools import cache
from pathlib import Path

from tutor.bootstrap import open_retrieval, open_store
from tutor.config import (
    DIALOGUES_DIR,
    DIALOGUES_FILE,
    MODELS_DIR,
    PROBLEMS_FILE,
    add_data_dir_argument,
    settings_from_args,
)
from tutor.domain.dialogues import read_dialogues
from tutor.domain.problems import ProblemBank
from tutor.evaluation.data import load_eval_dialogues, split
from tutor.evaluation.harness import EvalTutor, evaluate, table
from tutor.evaluation.learners import LLMLearner
from tutor.evaluation.quick import run_quick
from tutor.domain.prompting import INSTRUCT
from tutor.domain.repeats import WORDS
from tutor.domain.tutoring import DRAFT_TRIES
from tutor.errors import InvalidInput
from tutor.model.backend import prompt_format
from tutor.model.loading import load_backend
from tutor.model.registry import Registry
from tutor.model.retrieval import MiniLMEmbedder
from tutor.model.similarity import meaning_repeats


def register(subcommands) -> None:
    parser = subcommands.add_parser("eval", help="measure the tutor on a dialogue file")
    parser.add_argument("--quick", action="store_true",
                        help="guard and planner only, on the seed dialogues (seconds)")
    parser.add_argument("--dialogues", type=Path, default=DIALOGUES_DIR,
                        help="a JSONL file in MathDial's schema or the project's (default: dialogues/)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--model", nargs="+", default=["champion"], metavar="MODEL",
                       help="versions or aliases in models/ (default: champion), or 'base' for the "
                       "embedded base model without an adapter; several give one table")
    which.add_argument("--backend", help="any student spec instead: 'fake', a Hugging Face id or "
                       "path, or an OpenAI-compatible endpoint URL#model")
    parser.add_argument("--split", default="all", choices=("validation", "train", "all"),
                        help="which dialogues of the file: the fixed validation slice the students "
                        "are never trained on, the rest, or all (default)")
    parser.add_argument("--record", action="store_true",
                        help="keep the figures in the evaluated version's manifest in models/")
    parser.add_argument("--limit", type=int, help="evaluate the first N dialogues")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here (a list when several "
                        "models are evaluated)")
    parser.add_argument("--seed", type=int, default=0, help="for the simulated learner")
    parser.add_argument("--attacks", type=int, default=200,
                        help="answer-extraction attack messages to send (default 200)")
    parser.add_argument("--learner", help="an OpenAI-compatible endpoint (URL#model) to play the "
                        "learner; default: the scripted learner")
    parser.add_argument("--mrbench", type=Path, metavar="FILE",
                        help="a file in MRBench's format: our tutor writes each conversation's next turn, "
                        "judged beside the annotated tutors (GPT-4, Sonnet, Llama-3.1-405B, Expert, Novice)")
    parser.add_argument("--judge", default="champion",
                        help="the judge that reads the tutor's turns: a version in models/judges/, a judge's "
                        "folder, or 'none' (default: the one in use)")
    parser.add_argument("--verbose", action="store_true", help="with --quick: blocked human turns")
    parser.add_argument("--draft-tries", type=int, default=DRAFT_TRIES, metavar="N", choices=range(1, 11),
                        help="drafts a turn may take before the planner's words go out, as the app serves "
                        f"(default {DRAFT_TRIES}; 1: each turn's first draft only)")
    add_data_dir_argument(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    if args.quick:
        return run_quick_command(args)
    if args.mrbench:
        return run_mrbench_command(args)
    settings = settings_from_args(args)
    pairs = split(load_eval_dialogues(args.dialogues), args.split)[: args.limit]
    registry = Registry(MODELS_DIR, open_store(settings))
    if args.backend:
        students = [(args.backend, lambda: load_backend(args.backend, data_dir=settings.data_dir,
                                                        api_key=settings.api_key, progress=_status))]
    else:
        adapters = [registry.resolve(model, progress=_status) for model in args.model]
        students = [(adapter.name if adapter else "base",
                     lambda adapter=adapter: load_backend("embedded", data_dir=settings.data_dir,
                                                          adapter=adapter, progress=_status))
                    for adapter in adapters]
    if args.record and (args.backend or any(label == "base" for label, _ in students)):
        raise InvalidInput("--record keeps figures in a registered version's manifest: name one with --model.")
    make_learner = None
    if args.learner:
        learner_backend = load_backend(args.learner, data_dir=settings.data_dir, api_key=settings.api_key)
        make_learner = lambda problem, dialogue: LLMLearner(learner_backend, problem, dialogue, args.seed)  # noqa: E731
    reference = args.backend != "planner"  # the planner's own words: the reference row of every table
    if reference:
        students.insert(0, ("planner", lambda: load_backend("planner", data_dir=settings.data_dir)))
    retrieval = cache(lambda: open_retrieval(settings, ProblemBank.load(PROBLEMS_FILE), _status))
    # questions compared as the app compares them: by meaning, but by words for the fake student
    repeats = WORDS if args.backend == "fake" else meaning_repeats(MiniLMEmbedder())
    reader = open_judge(args.judge)
    reports = []
    for label, load in students:
        _status(f"evaluating {label} on {len(pairs)} dialogues")
        student = load()
        exemplars = None
        if args.backend != "fake" and prompt_format(student) == INSTRUCT:
            exemplars = retrieval().exemplars_for
        tutor = EvalTutor(student, settings.reveal_policy, exemplars=exemplars, tries=args.draft_tries, repeats=repeats,
                          judge=reader)
        report = evaluate(pairs, tutor,
                          seed=args.seed, attacks=args.attacks, make_learner=make_learner)
        report.details.update(model=label, dialogue_file=str(args.dialogues), split=args.split,
                              draft_tries=args.draft_tries)
        reports.append(report)
        if args.record and label != "planner":
            registry.record_evaluation(label, {"figures": _figures(report), "split": args.split,
                                               "dialogues": report.dialogues, "limit": args.limit,
                                               "seed": args.seed, "attacks": report.details.get("attacks", 0),
                                               "draft_tries": args.draft_tries})
            _status(f"recorded in {MODELS_DIR / label / 'manifest.json'}")
    print(table(reports))
    if args.out:
        evaluated = [report.to_json() for report in reports[1 if reference else 0:]]
        args.out.write_text(json.dumps(evaluated[0] if len(evaluated) == 1 else evaluated, indent=2) + "\n",
                            encoding="utf-8")
        print(f"written: {args.out}")
    return 0


def run_mrbench_command(args) -> int:
    from tutor.evaluation.mrbench import table as mrbench_table, tutor_on_mrbench
    from tutor.judge.registry import load_judge

    if not args.mrbench.exists():
        raise InvalidInput(f"No MRBench file at {args.mrbench}.")
    settings = settings_from_args(args)
    judge = load_judge(args.judge)  # the table is the judge's reading: it needs one
    if args.backend:
        student = load_backend(args.backend, data_dir=settings.data_dir, api_key=settings.api_key, progress=_status)
    else:
        adapter = Registry(MODELS_DIR, open_store(settings)).resolve(args.model[0], progress=_status)
        student = load_backend("embedded", data_dir=settings.data_dir, adapter=adapter, progress=_status)
    repeats = WORDS if args.backend == "fake" else meaning_repeats(MiniLMEmbedder())
    tutor = EvalTutor(student, settings.reveal_policy, tries=args.draft_tries, repeats=repeats)
    _status(f"our tutor ({student.version}) on {args.mrbench}, judged by {judge.version}")
    turns, rows = tutor_on_mrbench(args.mrbench, tutor, judge, args.limit, args.split)
    print(mrbench_table(rows, turns))
    if args.out:
        args.out.write_text("".join(json.dumps(asdict(turn)) + "\n" for turn in turns), encoding="utf-8")
        print(f"written: {args.out}")
    return 0


def run_quick_command(args) -> int:
    path = args.dialogues / DIALOGUES_FILE.name if args.dialogues.is_dir() else args.dialogues
    report = run_quick(list(read_dialogues(path)), ProblemBank.load(PROBLEMS_FILE), repeats=meaning_repeats(MiniLMEmbedder()))
    print(report.table())
    if args.verbose:
        print("\nhuman turns the guard blocks (examples):")
        for example in report.blocked_examples:
            print(f"  {example}")
    return 0


def open_judge(name: str):
    """The judge to read the turns with; None for 'none' or when none is there (said so)."""
    from tutor.judge.registry import load_judge

    if name == "none":
        return None
    try:
        return load_judge(name)
    except InvalidInput as error:
        _status(f"{error} The table has no judge columns.")
        return None


def _figures(report) -> dict:
    return {key: value for key, value in report.to_json().items() if key != "details"}


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
