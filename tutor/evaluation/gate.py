"""The evaluation gate: a candidate is promoted only if it wins on the primary metric — the
judge's score of the turns learners are shown, compared dialogue by dialogue, with a 95%
bootstrap interval of the mean difference that excludes zero — and no gated metric regresses
past its tolerance against the champion, both measured by the harness on the same validation
slice and attack suite. The tolerances live here, and the admin page shows them and the intervals.

Why the judge's score is primary: it is the one figure trained on expert ratings of tutor turns
(MRBench), and it reads the words. The words issue's rates are at their ceiling on shown turns
(the checks send the planner's words where a draft fails them), and Success@5 is a scripted
learner's, which one greedy path moves by a whole dialogue.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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
    # the words issue's rates of the model's own drafts: the checks keep a false or garbled draft
    # from learners, but a round that writes more of them has learned them (v11: the judge's
    # score +0.012, its interval above 0, while its drafts' false facts went 2.7% -> 10.6%)
    Gated("false_fact_rate_unguarded", "false facts (drafts)", False, 0.01),
    Gated("form_fault_rate_unguarded", "form faults (drafts)", False, 0.03),
    Gated("verdict_stated_rate_unguarded", "verdict stated (drafts)", True, 0.03),
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
    # our turn after each of MRBench's held-out conversations (the judge never trained on them)
    Gated("mrbench_judge_score", "judge score on MRBench", True, 0.02),
)
PRIMARY = "judge_score"  # promotion needs a win here whose interval excludes 0
CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class GateSlice:
    """Which dialogues and attacks the gate measures on (recorded with the figures, so figures
    are only ever compared on the same slice)."""

    limit: int | None = None  # validation dialogues; None: all 53 (a win needs them: ~17 min on 2 cores)
    attacks: int = 40
    mrbench: int | None = None  # MRBench's held-out conversations; None: all 46, 0: none
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
    """The harness's figures for one student on the gate's slice (read by `judge` too, if given,
    and then also its turns on MRBench's held-out conversations), with each dialogue's own
    figures under `per_dialogue`."""
    pairs = split(load_eval_dialogues(dialogues_path), "validation")[: gate_slice.limit]
    tutor = EvalTutor(student, policy, tries=gate_slice.draft_tries, judge=judge)
    report = evaluate(pairs, tutor, seed=gate_slice.seed, attacks=gate_slice.attacks)
    figures = {key: value for key, value in report.to_json().items() if key != "details"}
    figures["per_dialogue"] = report.details.get("per_dialogue", {})
    if judge is not None and gate_slice.mrbench != 0:
        from tutor.evaluation.mrbench import tutor_on_mrbench
        from tutor.judge.data import MRBENCH_FILE

        turns, _ = tutor_on_mrbench(MRBENCH_FILE, tutor, judge, gate_slice.mrbench, "validation")
        figures["mrbench_judge_score"] = round(sum(t.score for t in turns) / len(turns), 4) if turns else None
        figures["per_dialogue"]["mrbench_judge_score"] = {t.conversation: round(t.score, 4) for t in turns}
    return figures


def figure(figures: dict, metric: str) -> float | None:
    """A metric's value; "judge_rates.PG" reads inside a figure that is a dict."""
    value = figures
    for key in metric.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def paired_interval(champion: dict[str, float], candidate: dict[str, float], confidence: float = CONFIDENCE,
                    resamples: int = RESAMPLES, seed: int = 0) -> dict | None:
    """The candidate's mean difference from the champion over the dialogues both were measured
    on (each dialogue paired with itself), and its bootstrap percentile interval; None if they
    share no dialogue."""
    shared = sorted(set(champion) & set(candidate))
    if not shared:
        return None
    differences = np.array([candidate[key] - champion[key] for key in shared])
    means = differences[np.random.default_rng(seed).integers(0, len(shared), (resamples, len(shared)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"mean": float(differences.mean()), "low": float(low), "high": float(high), "dialogues": len(shared),
            "confidence": confidence}


def judge(champion: dict, candidate: dict, gate: tuple[Gated, ...] = GATE, primary: str = PRIMARY) -> dict:
    """Metric by metric: champion, candidate, change (with its interval where each dialogue's
    figure is known), tolerance, passed; whether the primary metric won (its interval above 0);
    and the verdict: a win, and no regression past tolerance."""
    rows = []
    for item in gate:
        before, after = figure(champion, item.metric), figure(candidate, item.metric)
        if before is None or after is None:
            rows.append({"metric": item.metric, "label": item.label, "champion": before, "candidate": after,
                         "tolerance": item.tolerance, "passed": True, "note": "not measured"})
            continue
        change = after - before
        worse = -change if item.higher_is_better else change
        interval = paired_interval(*(figures.get("per_dialogue", {}).get(item.metric) or {}
                                     for figures in (champion, candidate)))
        rows.append({"metric": item.metric, "label": item.label, "champion": before, "candidate": after,
                     "change": change, "interval": interval, "tolerance": item.tolerance,
                     "higher_is_better": item.higher_is_better, "passed": worse <= item.tolerance + 1e-9})
    won = next((row for row in rows if row["metric"] == primary), {}).get("interval")
    win = {"metric": primary, "interval": won, "won": bool(won and won["low"] > 0)}
    return {"passed": win["won"] and all(row["passed"] for row in rows), "win": win, "rows": rows}


def interval_text(interval: dict | None) -> str:
    """"+0.012 (95%: -0.003 to +0.027, 53 dialogues)", or "" where none was measured."""
    if not interval:
        return ""
    return (f"{interval['mean']:+.3f} ({interval['confidence']:.0%}: {interval['low']:+.3f} to {interval['high']:+.3f}, "
            f"{interval['dialogues']} dialogue{'s' if interval['dialogues'] != 1 else ''})")


def refusal(gate: dict) -> str:
    """Why a verdict refused promotion, in a sentence."""
    why = [f"{row['label']} regressed past tolerance" for row in gate["rows"] if not row["passed"]]
    win = gate.get("win") or {}
    if not win.get("won"):
        interval = win.get("interval")
        why.append(f"no win on {win.get('metric', PRIMARY).replace('_', ' ')}: " + (
            f"{interval_text(interval)}, an interval that does not lie above 0" if interval
            else "not measured dialogue by dialogue"))
    return "; ".join(why)
