"""Dialogue files to evaluate on: MathDial's schema, or the project's own (`dialogues/`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tutor.config import DIALOGUES_FILE, PROBLEMS_FILE
from tutor.domain.dialogues import Dialogue, read_dialogues
from tutor.domain.mathdial import read_mathdial
from tutor.domain.problems import Problem, ProblemBank
from tutor.errors import InvalidInput


def load_eval_dialogues(path: Path) -> list[tuple[Problem, Dialogue]]:
    """(problem, dialogue) pairs from a MathDial-schema file (qid, question, ground_truth,
    conversation...) or from the project's format (problems from the bank); a folder means
    its `mathdial.jsonl`."""
    if path.is_dir():
        path = path / DIALOGUES_FILE.name
    if not path.exists():
        raise InvalidInput(f"No dialogue file at {path}.")
    first = _first_record(path)
    if "conversation" in first:
        return list(read_mathdial(path))
    if "turns" in first:
        bank = ProblemBank.load(PROBLEMS_FILE, include_excluded=True)
        return [(bank.get(d.problem_id), d) for d in read_dialogues(path)]
    raise InvalidInput(f"{path} is neither MathDial's schema nor the project's dialogue format.")


def _first_record(path: Path) -> dict:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                try:
                    return json.loads(line)
                except json.JSONDecodeError as error:
                    raise InvalidInput(f"{path} is not JSON lines: {error}") from None
    raise InvalidInput(f"{path} is empty.")


VALIDATION_SHARE = 10  # one problem in ten: fixed by the problem id, never trained on


def is_validation(problem_id: str) -> bool:
    """The fixed validation slice: problems whose id hashes into it, whatever file they are in."""
    return hashlib.sha256(problem_id.encode()).digest()[0] % VALIDATION_SHARE == 0


def split(pairs: list[tuple[Problem, Dialogue]], which: str) -> list[tuple[Problem, Dialogue]]:
    """`validation`, `train` or `all` of the pairs."""
    if which == "all":
        return pairs
    if which not in ("validation", "train"):
        raise InvalidInput(f"Unknown split {which!r}: validation, train or all.")
    return [(p, d) for p, d in pairs if is_validation(p.id) == (which == "validation")]
