"""Human tutoring dialogues with teacher-move labels, in the project's JSONL format."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

MOVES = ("focus", "probing", "telling", "generic")


@dataclass(frozen=True)
class Turn:
    role: str  # "teacher" or "learner"
    text: str
    move: str | None = None  # teacher turns only: one of MOVES


@dataclass(frozen=True)
class LearnerProfile:
    name: str = ""
    profile: str = ""
    incorrect_solution: str = ""
    confusion: str = ""


@dataclass(frozen=True)
class Dialogue:
    id: str
    problem_id: str
    turns: tuple[Turn, ...]
    learner: LearnerProfile = field(default_factory=LearnerProfile)
    outcome: str = ""  # the teacher's own judgement: did the learner get there?

    def to_json(self) -> dict:
        record = asdict(self)
        record["turns"] = [
            {key: value for key, value in asdict(turn).items() if value is not None}
            for turn in self.turns
        ]
        return record

    @classmethod
    def from_json(cls, record: dict) -> Dialogue:
        return cls(
            id=record["id"],
            problem_id=record["problem_id"],
            turns=tuple(Turn(**turn) for turn in record["turns"]),
            learner=LearnerProfile(**record.get("learner", {})),
            outcome=record.get("outcome", ""),
        )


def read_dialogues(path: Path) -> Iterator[Dialogue]:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield Dialogue.from_json(json.loads(line))


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write one JSON object a line; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
