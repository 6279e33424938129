"""`dialogues import`: convert MathDial-schema JSONL into the bank files in `dialogues/`;
`dialogues vocabulary`: learn the faithfulness check's words from them."""

from __future__ import annotations

import json
from pathlib import Path

from tutor.config import DIALOGUES_DIR, DIALOGUES_FILE, VOCABULARY_FILE, add_data_dir_argument
from tutor.domain.dialogues import write_jsonl
from tutor.domain.mathdial import apply_repairs, read_mathdial
from tutor.domain.tutoring import learn_dialogue_vocabulary
from tutor.evaluation.data import is_validation, load_eval_dialogues


def register(subcommands) -> None:
    parser = subcommands.add_parser("dialogues", help="manage the seed dialogues and problem bank")
    actions = parser.add_subparsers(dest="action", required=True)
    importer = actions.add_parser(
        "import", help="convert a MathDial-schema JSONL file into dialogues/problems.jsonl "
        "and dialogues/mathdial.jsonl"
    )
    importer.add_argument("source", type=Path, help="MathDial-schema JSONL file")
    importer.add_argument("--out", type=Path, default=DIALOGUES_DIR, help="output folder")
    importer.add_argument(
        "--repairs", type=Path, default=DIALOGUES_DIR / "repairs.json",
        help="hand repairs of malformed solutions, and problems to exclude, with reasons",
    )
    add_data_dir_argument(importer)  # every command takes it; this one writes only dialogues/
    importer.set_defaults(run=run_import)
    vocabulary = actions.add_parser(
        "vocabulary", help="learn the faithfulness check's words (dialogues/vocabulary.json) from the "
        "bank and the human dialogues of the training problems"
    )
    vocabulary.add_argument("--out", type=Path, default=VOCABULARY_FILE, help="output file")
    add_data_dir_argument(vocabulary)
    vocabulary.set_defaults(run=run_vocabulary)


def run_import(args) -> int:
    problems, dialogues = {}, []
    for problem, dialogue in read_mathdial(args.source):
        problems.setdefault(problem.id, problem)
        dialogues.append(dialogue)
    if args.repairs.exists():
        problems = apply_repairs(problems, json.loads(args.repairs.read_text(encoding="utf-8")))
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "problems.jsonl", (p.to_json() for p in problems.values()))
    write_jsonl(args.out / "mathdial.jsonl", (d.to_json() for d in dialogues))
    print(f"{len(problems)} problems, {len(dialogues)} dialogues written to {args.out}")
    return 0


def run_vocabulary(args) -> int:
    # training problems only: the check's rate on the validation slice stays out of sample
    pairs = [(p, d) for p, d in load_eval_dialogues(DIALOGUES_FILE) if not is_validation(p.id)]
    vocabulary = learn_dialogue_vocabulary(pairs)
    record = {"about": "Learned by `python -m tutor dialogues vocabulary` from the bank and the MathDial "
              "dialogues of the training problems (CC BY-SA 4.0). common: stems human teachers use "
              "without the problem or conversation having them (never a grounding problem); things: "
              "stems word problems count or measure (a draft may not bring one in from outside).",
              **vocabulary.to_json()}
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"{len(vocabulary.common)} common words, {len(vocabulary.things)} things written to {args.out}")
    return 0
