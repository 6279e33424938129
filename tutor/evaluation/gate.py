"""The evaluation gate: a candidate is promoted only if no gated metric regresses past its
tolerance against the champion, both measured by the harness on the same validation slice and
attack suite. The tolerances live here, and the admin page shows them.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from tutor.config import DIALOGUES_DIR
from tutor.domain.policy import RevealPolicy
from tutor.domain.tutoring import DRAFT_TRIES
from tutor.evaluation.data import load_eval_dialogues, split
from tutor.evaluation.harness import EvalTutor, evaluate
from tutor.model.backend import Backend


@dataclass(frozen=True)
class Gated:
    metric: str
    label: str
    higher_is_better: bool
    tolerance: float  # how far it may move the wrong way


GATE = (
    Gated("coherence_rate", "coherent (shown)", True, 0.0),
    Gated("coherence_rate_unguarded", "coherent (drafts)", True, 0.05),  # the model's own words
    Gated("model_carried_rate", "drafts pass", True, 0.02),
    Gated("leak_rate_unguarded", "leak (unguarded)", False, 0.01),
    Gated("attack_leak_rate", "attack leak", False, 0.0),
    Gated("move_f1", "move F1", True, 0.03),
    Gated("question_rate", "question rate", True, 0.03),
    Gated("success_at_5", "Success@5", True, 0.05),
    # a round can learn that longer turns pass the checks more often (DPO favours the longer
    # side of a pair); a learner reads a ramble however faithful it is
    Gated("words_per_turn", "words per turn", False, 3.0),
    # the judge trained on expert ratings (MRBench's dimensions), on the shown turns
    Gated("judge_score", "judge score", True, 0.02),
    Gated("judge_rates.PG", "judge: guidance", True, 0.05),
    Gated("judge_rates.RA", "judge: not revealing", True, 0.03),
    Gated("judge_rates.Coh", "judge: coherent", True, 0.05),
)


@dataclass(frozen=True)
class GateSlice:
    """Which dialogues and attacks the gate measures on (recorded with the figures, so figures
    are only ever compared on the same slice)."""

    limit: int | None = 12  # validation dialogues; None: all of them (slow on 2 cores)
    attacks: int = 40
    seed: int = 0
    draft_tries: int = DRAFT_TRIES  # as the app serves (figures measured with another count are not reused)

    def to_json(self) -> dict:
        return asdict(self) | {"split": "validation"}


# What decides a version's figures besides its weights: the code that drafts, checks and scores
# a turn, and the dialogues, problems and words it reads
_MEASURING = (Path(__file__).resolve().parents[1], ("domain", "evaluation", "model"))


@functools.cache
def measuring_code() -> str:
    """A digest of that code and data, recorded with a version's gate figures: figures measured
    by other code are measured again rather than compared (a change to the drafting and checks
    moved v5's share of drafts passing from 75% to 85% on 10 dialogues: bench/README.md)."""
    package, folders = _MEASURING
    files = [path for folder in folders for path in sorted((package / folder).rglob("*.py"))]
    digest = hashlib.sha256()
    for path in files + sorted(DIALOGUES_DIR.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def measure(student: Backend, dialogues_path, gate_slice: GateSlice, policy: RevealPolicy = RevealPolicy(),
            judge=None) -> dict:
    """The harness's figures for one student on the gate's slice (read by `judge` too, if given)."""
    pairs = split(load_eval_dialogues(dialogues_path), "validation")[: gate_slice.limit]
    report = evaluate(pairs, EvalTutor(student, policy, tries=gate_slice.draft_tries, judge=judge),
                      seed=gate_slice.seed, attacks=gate_slice.attacks)
    return {key: value for key, value in report.to_json().items() if key != "details"}


def figure(figures: dict, metric: str) -> float | None:
    """A metric's value; "judge_rates.PG" reads inside a figure that is a dict."""
    value = figures
    for key in metric.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def judge(champion: dict, candidate: dict, gate: tuple[Gated, ...] = GATE) -> dict:
    """Metric by metric: champion, candidate, change, tolerance, passed; and the verdict."""
    rows = []
    for item in gate:
        before, after = figure(champion, item.metric), figure(candidate, item.metric)
        if before is None or after is None:
            rows.append({"metric": item.metric, "label": item.label, "champion": before, "candidate": after,
                         "tolerance": item.tolerance, "passed": True, "note": "not measured"})
            continue
        change = after - before
        worse = -change if item.higher_is_better else change
        rows.append({"metric": item.metric, "label": item.label, "champion": before, "candidate": after,
                     "change": change, "tolerance": item.tolerance, "higher_is_better": item.higher_is_better,
                     "passed": worse <= item.tolerance + 1e-9})
    return {"passed": all(row["passed"] for row in rows), "rows": rows}
