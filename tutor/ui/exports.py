"""Downloads. A learner's exported data waits here for the admin's download: in this process's
memory only, never in Gradio's file cache (whose files any logged-in user can fetch by path). An
export is handed out once, is dropped after `keep_s` seconds, and is never handed out for a user
who has been deleted since. Tables (a teacher's turns, the audit log) download as CSV, made when
asked for by a route that checks who asks."""

from __future__ import annotations

import csv
import io
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

EXPORT_KEEP_S = 600


@dataclass(frozen=True)
class Export:
    user_id: int
    filename: str
    content: bytes
    made: float


class PendingExports:
    def __init__(self, keep_s: float = EXPORT_KEEP_S, clock: Callable[[], float] = time.monotonic):
        self.keep_s = keep_s
        self.clock = clock
        self._waiting: dict[str, Export] = {}
        self._lock = threading.Lock()

    def add(self, user_id: int, filename: str, content: bytes) -> str:
        """Keep an export for download; returns the random key its link names."""
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._drop_old()
            self._waiting[key] = Export(user_id, filename, content, self.clock())
        return key

    def take(self, key: str) -> Export | None:
        """The export under `key`, removed: a second download finds nothing."""
        with self._lock:
            self._drop_old()
            return self._waiting.pop(key, None)

    def forget_user(self, user_id: int) -> None:
        with self._lock:
            for key in [k for k, export in self._waiting.items() if export.user_id == user_id]:
                del self._waiting[key]

    def _drop_old(self) -> None:
        oldest = self.clock() - self.keep_s
        for key in [k for k, export in self._waiting.items() if export.made < oldest]:
            del self._waiting[key]


# a cell a spreadsheet would run as a formula (CSV injection): learners write these cells' text
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")  # full-width forms too


def as_csv(header: list[str], rows: list[list]) -> str:
    """A table as CSV a spreadsheet opens safely: text that starts like a formula is quoted with
    a leading apostrophe, so it shows as typed and never runs."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell
                         for cell in row])
    return out.getvalue()
