"""Problems as data: the word problem, its final answer and its worked solution."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tutor.errors import NotFound


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str = ""
    solution: tuple[str, ...] = ()  # worked solution, one step per line
    source: str = "bank"  # "bank" or "learner"
    excluded: str = ""  # why a bank problem is left out of tutoring (its solution won't verify)

    @classmethod
    def from_learner_text(cls, text: str) -> Problem:
        """A problem a learner pasted: no known answer or solution yet."""
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return cls(id=f"own-{digest}", question=text, source="learner")

    def to_json(self) -> dict:
        record = asdict(self)
        record["solution"] = list(self.solution)
        if not self.excluded:
            del record["excluded"]
        return record

    @classmethod
    def from_json(cls, record: dict) -> Problem:
        return cls(**{**record, "solution": tuple(record.get("solution", ()))})


@dataclass
class ProblemBank:
    """The bank problems shipped in `dialogues/problems.jsonl`, by id, in file order."""

    problems: dict[str, Problem] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, *, include_excluded: bool = False) -> ProblemBank:
        """The bank; problems marked `excluded` are left out unless asked for."""
        with open(path, encoding="utf-8") as lines:
            problems = [Problem.from_json(json.loads(line)) for line in lines if line.strip()]
        return cls({p.id: p for p in problems if include_excluded or not p.excluded})

    def get(self, problem_id: str) -> Problem:
        try:
            return self.problems[problem_id]
        except KeyError:
            raise NotFound(f"No problem with id {problem_id!r} in the bank.") from None

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self):
        return iter(self.problems.values())
