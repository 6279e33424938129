"""The reveal policy a teacher sets: when the tutor may give a step's value or the answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RevealPolicy:
    # failed attempts on a step before the tutor may state that step's value (bottom-out)
    bottom_out_after: int = 3
    # failed attempts on the last step before the tutor may state the final answer;
    # None: never (e.g. graded assignments)
    final_answer_after: int | None = None

    def allows_bottom_out(self, attempts: int, last_step: bool) -> bool:
        if last_step:
            return self.final_answer_after is not None and attempts >= self.final_answer_after
        return attempts >= self.bottom_out_after

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict | None) -> RevealPolicy:
        return cls(**record) if record else cls()
