"""The judge reported as the BEA 2025 shared task reports: 3-class macro F1 and accuracy per
dimension, and pairwise accuracy (of two responses to one conversation whose annotations differ,
does the judge prefer the one the annotators rated better?) — beside a trivial baseline it must
clearly beat: frozen MiniLM embeddings of the learner's last message and the response, and a
logistic regression per dimension."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Sequence

import numpy as np

from tutor.judge.data import DIMENSIONS, SHORT, Row

# The shared task's best 3-class macro F1 (its own test set) and this project's goals
SHARED_TASK_BEST = {"Mistake_Identification": 0.7181, "Providing_Guidance": 0.5834}
GOALS = {"Mistake_Identification": 0.72, "Providing_Guidance": 0.59, "Revealing_of_the_Answer": 0.85}


@dataclass(frozen=True)
class DimensionFigures:
    macro_f1: float
    accuracy: float
    n: int


@dataclass(frozen=True)
class Report:
    name: str
    dimensions: dict[str, DimensionFigures]
    pairwise: float | None
    pairs: int

    def to_json(self) -> dict:
        return {"dimensions": {SHORT[d]: {"macro_f1": round(f.macro_f1, 4), "accuracy": round(f.accuracy, 4),
                                          "n": f.n} for d, f in self.dimensions.items()},
                "pairwise_accuracy": None if self.pairwise is None else round(self.pairwise, 4),
                "pairs": self.pairs}


# A predictor: rows -> (per row, per dimension, the predicted class; per row, a score to rank)
Predictor = Callable[[Sequence[Row]], tuple[list[dict[str, str]], list[float]]]


def evaluate(name: str, rows: Sequence[Row], predict: Predictor) -> Report:
    from sklearn.metrics import accuracy_score, f1_score

    predicted, scores = predict(rows)
    dimensions = {}
    for dimension, classes in DIMENSIONS.items():
        pairs = [(row.labels[dimension], guess[dimension]) for row, guess in zip(rows, predicted)
                 if row.labels.get(dimension) in classes]
        if not pairs:
            continue
        truth, guess = zip(*pairs)
        # macro over the classes the annotators used (a class nobody used scores no zero)
        used = sorted(set(truth), key=classes.index)
        dimensions[dimension] = DimensionFigures(
            float(f1_score(truth, guess, labels=used, average="macro", zero_division=0)),
            float(accuracy_score(truth, guess)), len(pairs))
    agree, total = pairwise(rows, scores)
    return Report(name, dimensions, agree / total if total else None, total)


def pairwise(rows: Sequence[Row], scores: Sequence[float]) -> tuple[int, int]:
    """Pairs of one conversation's responses whose annotated quality differs: how many the
    scores order the same way (ties count half)."""
    by_conversation: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        if row.quality is not None:
            by_conversation.setdefault(row.conversation, []).append(index)
    agree, total = 0.0, 0
    for indexes in by_conversation.values():
        for a, b in combinations(indexes, 2):
            if abs(rows[a].quality - rows[b].quality) < 1e-9:
                continue
            total += 1
            difference = (scores[a] - scores[b]) * (rows[a].quality - rows[b].quality)
            agree += 1.0 if difference > 0 else 0.5 if difference == 0 else 0.0
    return round(agree), total


def judge_predictor(judge) -> Predictor:
    def predict(rows: Sequence[Row]):
        judged = judge.score_many([(row.exchange, row.response) for row in rows])
        return [j.labels() for j in judged], [j.score for j in judged]
    return predict


def baseline_predictor(train: Sequence[Row], embed: Callable[[list[str]], np.ndarray]) -> Predictor:
    """Logistic regression per dimension on frozen embeddings of (learner's message, response)."""
    from sklearn.linear_model import LogisticRegression

    def features(rows: Sequence[Row]) -> np.ndarray:
        return np.hstack([embed([row.exchange.learner for row in rows]), embed([row.response for row in rows])])

    x = features(train)
    models = {}
    for dimension, classes in DIMENSIONS.items():
        known = [i for i, row in enumerate(train) if row.labels.get(dimension) in classes]
        targets = [train[i].labels[dimension] for i in known]
        if len(set(targets)) > 1:
            models[dimension] = LogisticRegression(max_iter=2000, C=1.0).fit(x[known], targets)

    def predict(rows: Sequence[Row]):
        z = features(rows)
        columns = {d: model.predict(z) for d, model in models.items()}
        goodness = np.zeros(len(rows))
        from tutor.judge.data import GOODNESS
        for dimension, model in models.items():
            probabilities = model.predict_proba(z)
            goodness += probabilities @ np.array([GOODNESS[dimension].get(c, 0.0) for c in model.classes_])
        predicted = [{d: str(columns[d][i]) for d in columns} for i in range(len(rows))]
        return predicted, goodness.tolist()
    return predict


def table(reports: Sequence[Report]) -> str:
    """One line per predictor: macro F1 (accuracy) per dimension, pairwise accuracy."""
    dimensions = [d for d in DIMENSIONS if any(d in r.dimensions for r in reports)]
    width = max(len(r.name) for r in reports + [Report("shared task best", {}, None, 0)]) + 2
    lines = [f"{'':<{width}}" + "".join(f"{SHORT[d]:>14}" for d in dimensions) + f"{'pairwise':>11}",
             f"{'':<{width}}" + "".join(f"{'F1 (acc)':>14}" for _ in dimensions)]
    for report in reports:
        cells = [f"{f.macro_f1:.3f} ({f.accuracy:.2f})" if (f := report.dimensions.get(d)) else "—" for d in dimensions]
        pair = f"{report.pairwise:.3f}" if report.pairwise is not None else "—"
        lines.append(f"{report.name:<{width}}" + "".join(f"{c:>14}" for c in cells) + f"{pair:>11}")
    lines.append(f"{'shared task best':<{width}}" + "".join(
        f"{SHARED_TASK_BEST[d]:>14.3f}" if d in SHARED_TASK_BEST else f"{'':>14}" for d in dimensions))
    lines.append(f"{'goal':<{width}}" + "".join(f"{GOALS[d]:>14.2f}" if d in GOALS else f"{'':>14}" for d in dimensions))
    counts = reports[0].dimensions
    lines.append(f"{'responses':<{width}}" + "".join(f"{counts[d].n if d in counts else 0:>14}" for d in dimensions)
                 + f"{reports[0].pairs:>11}")
    return "\n".join(lines)
