"""`distill`: build the student's supervised dataset from dialogues/ (and a teacher model)."""

from __future__ import annotations

import sys
from pathlib import Path

from tutor.bootstrap import open_store
from tutor.config import DIALOGUES_DIR, MODELS_DIR, PROBLEMS_FILE, VOCABULARY_FILE, add_data_dir_argument, add_policy_arguments, settings_from_args
from tutor.domain.faithfulness import load_vocabulary
from tutor.domain.problems import ProblemBank
from tutor.domain.prompting import DECISION_FORMAT, SPINE_FORMAT
from tutor.evaluation.data import load_eval_dialogues
from tutor.evaluation.harness import EvalTutor
from tutor.model.backend import GenerationParams
from tutor.model.loading import load_backend
from tutor.model.registry import Registry
from tutor.model.retrieval import MiniLMEmbedder
from tutor.model.similarity import meaning_repeats
from tutor.training.distill import Resampler, distill
from tutor.training.runs import default_dataset

# The teacher phrases planned moves; greedy, so a dataset can be rebuilt the same way.
TEACHER_PARAMS = GenerationParams(max_new_tokens=64, temperature=0)


def register(subcommands) -> None:
    parser = subcommands.add_parser("distill", help="build the student's training dataset (TRL "
                                    "conversational format) from the teacher dialogues")
    parser.add_argument("--dialogues", type=Path, default=DIALOGUES_DIR,
                        help="human tutoring dialogues (MathDial's schema or the project's; default dialogues/)")
    parser.add_argument("--out", type=Path, help="output folder (default: DATA_DIR/distill)")
    parser.add_argument("--teacher", help="also let a teacher model tutor simulated learners on bank problems: "
                        "an OpenAI-compatible endpoint URL#model, or a Hugging Face id / local path")
    parser.add_argument("--teacher-turns", type=int, default=5, help="tutor turns per teacher dialogue")
    parser.add_argument("--limit", type=int, help="with --teacher: only the first N bank problems")
    parser.add_argument("--resample", metavar="VERSION",
                        help="rejection sampling: at each human turn this student version drafts "
                        "--samples turns with the human's move; the first that passes the guard and "
                        "the faithfulness check is the target instead of the human's words")
    parser.add_argument("--samples", type=int, default=4, help="with --resample: drafts per turn")
    parser.add_argument("--format", default=SPINE_FORMAT, choices=(SPINE_FORMAT, DECISION_FORMAT),
                        help=f"the student's prompt format (default {SPINE_FORMAT}: each note carries the planner's "
                        "turn, each target is what the product would send; with --resample: that student's)")
    add_data_dir_argument(parser)
    add_policy_arguments(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    settings = settings_from_args(args)
    out = args.out or default_dataset(settings.data_dir).parent
    pairs = load_eval_dialogues(args.dialogues)
    teacher, bank = None, []
    if args.teacher:
        backend = load_backend(args.teacher, data_dir=settings.data_dir, api_key=settings.api_key,
                               progress=_status)
        teacher = EvalTutor(backend, settings.reveal_policy, TEACHER_PARAMS)
        bank = list(ProblemBank.load(PROBLEMS_FILE))[: args.limit]
    vocabulary = load_vocabulary(VOCABULARY_FILE)
    resampler, workers, prompt_format = None, 1, args.format
    if args.resample:
        adapter = Registry(MODELS_DIR, open_store(settings)).resolve(args.resample, progress=_status)
        student = load_backend("embedded", data_dir=settings.data_dir, adapter=adapter, progress=_status)
        resampler = Resampler(student, args.samples, vocabulary=vocabulary)
        workers = getattr(student, "workers", 1)  # the serving engine decodes this many at once
        prompt_format = student.prompt_format  # its drafts are asked as it is asked
    report = distill(pairs, out, bank=bank, teacher=teacher, teacher_turns=args.teacher_turns,
                     vocabulary=vocabulary, resampler=resampler, workers=workers, prompt_format=prompt_format,
                     repeats=meaning_repeats(MiniLMEmbedder()), progress=_status)
    if resampler:
        print(f"the student's own passing drafts: {report.resampled} of the targets")
    print(f"{report.dialogues} dialogues, {report.targets} tutor turns to learn from "
          f"({', '.join(f'{m} {n}' for m, n in sorted(report.moves.items()))})")
    if report.target_sources:
        print("targets: " + ", ".join(f"{source} {count}" for source, count in sorted(report.target_sources.items())))
    for reason, count in sorted(report.masked.items()):
        print(f"  kept as context only ({reason}): {count}")
    print(f"held out: {report.validation_problems} validation problems")
    print(f"written: {out / 'sft.jsonl'} (sha256 {report.sha256[:12]})")
    return 0


def _status(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
