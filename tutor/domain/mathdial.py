"""Read MathDial's JSONL schema (qid, question, ground_truth, conversation with |EOM|).

Used to import the seed bank into `dialogues/` and, later, to evaluate on any file of the same
schema.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterator

from tutor.domain.dialogues import MOVES, Dialogue, LearnerProfile, Turn
from tutor.domain.problems import Problem

TURN_SEPARATOR = "|EOM|"
_TEACHER_TURN = re.compile(r"^\s*Teacher:\s*(?:\((\w+)\))?\s*(.*)$", re.DOTALL)
_SPEAKER_PREFIX = re.compile(r"^\s*[A-Z][\w' -]{0,30}:\s*")


def parse_ground_truth(ground_truth: str) -> tuple[tuple[str, ...], str]:
    """Split a GSM8K-style solution into its step lines and the final answer (last line)."""
    lines = [line.strip() for line in ground_truth.strip().splitlines() if line.strip()]
    if not lines:
        return (), ""
    return tuple(lines[:-1]), lines[-1]


def parse_conversation(conversation: str) -> tuple[Turn, ...]:
    turns = []
    for raw in conversation.split(TURN_SEPARATOR):
        if not raw.strip():
            continue
        teacher = _TEACHER_TURN.match(raw)
        if teacher:
            move = teacher.group(1)
            turns.append(Turn("teacher", teacher.group(2).strip(), move if move in MOVES else None))
        else:
            # Learner turns are prefixed "Student:" or with the learner's name ("Mariana:").
            turns.append(Turn("learner", _SPEAKER_PREFIX.sub("", raw, count=1).strip()))
    return tuple(turns)


def convert_record(record: dict, dialogue_id: str) -> tuple[Problem, Dialogue]:
    solution, answer = parse_ground_truth(record["ground_truth"])
    problem_id = str(record["qid"])
    problem = Problem(
        id=problem_id, question=record["question"].strip(), answer=answer, solution=solution
    )
    profile = record.get("student_profile") or ""
    learner = LearnerProfile(
        name=profile.split(" ", 1)[0] if profile else "",
        profile=profile,
        incorrect_solution=record.get("student_incorrect_solution") or "",
        confusion=record.get("teacher_described_confusion") or "",
    )
    dialogue = Dialogue(
        id=dialogue_id,
        problem_id=problem_id,
        turns=parse_conversation(record["conversation"]),
        learner=learner,
        outcome=record.get("self-correctness") or "",
    )
    return problem, dialogue


def read_mathdial(path: Path) -> Iterator[tuple[Problem, Dialogue]]:
    """Each record as (problem, dialogue); dialogue ids are `<qid>-<n>`, n counting per problem."""
    seen: Counter[str] = Counter()
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                seen[str(record["qid"])] += 1
                yield convert_record(record, f"{record['qid']}-{seen[str(record['qid'])]}")


def apply_repairs(problems: dict[str, Problem], repairs: dict[str, dict]) -> dict[str, Problem]:
    """Replace malformed solutions by hand-repaired ones, or mark problems excluded, by id.

    Each repair is `{"reason": ..., "solution": [...]}` or `{"exclude": reason}`.
    """
    repaired = dict(problems)
    for problem_id, repair in repairs.items():
        if problem_id not in repaired:
            raise ValueError(f"repair for unknown problem {problem_id}")
        if "exclude" in repair:
            repaired[problem_id] = dataclasses.replace(repaired[problem_id], excluded=repair["exclude"])
        else:
            repaired[problem_id] = dataclasses.replace(
                repaired[problem_id], solution=tuple(repair["solution"])
            )
    return repaired
