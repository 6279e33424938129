"""Metric definitions, pinned by tests on hand-made dialogues."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from tutor.domain.arithmetic import numbers_in
from tutor.domain.dialogues import MOVES
from tutor.domain.faithfulness import Judgement, check_sent
from tutor.domain.guard import HARMLESS, GuardContext, check


def states_final_answer(text: str, final: Fraction | None, learner_stated: bool,
                        question_expression_ok: bool = False) -> bool:
    """The text gives the final answer (digits, words, an expression...) before the learner did.
    Asking "what is 200 + 300?" as a partial hint does not give it."""
    if final is None or learner_stated:
        return False
    return check(text, GuardContext(final, question_expression_ok=question_expression_ok)).leaked_final


def numbers_correct(text: str, true_values: Iterable[Fraction]) -> bool:
    """Every number in the turn is a true quantity of the problem (given, a step's value, the
    answer) or one the learner said; a made-up or miscalculated number makes it wrong."""
    allowed = set(true_values) | HARMLESS
    return all(n in allowed or n * 100 in allowed or n / 100 in allowed for n in numbers_in(text))


def coherent(text: str, judgement: Judgement) -> bool:
    """The turn agrees with the learner's actual correctness per the grader (no praise for a
    wrong value, no "not quite" for a right one, a celebration after a solution) and names
    nothing outside the problem and the conversation."""
    return not check_sent(text, judgement)


def shown_then_replaced(seen: Sequence[str]) -> bool:
    """The learner saw text that the turn later withdrew: some text shown while it streamed is
    not the start of what followed it."""
    return any(not later.startswith(earlier) for earlier, later in zip(seen, seen[1:]))


def is_question(text: str) -> bool:
    return "?" in text


def f1_by_label(pairs: Iterable[tuple[str, str]], labels: tuple[str, ...] = MOVES) -> dict[str, float]:
    """F1 of each label that occurs among (predicted, reference) pairs."""
    pairs = list(pairs)
    scores = {}
    for label in labels:
        true_positive = sum(1 for p, r in pairs if p == label and r == label)
        predicted = sum(1 for p, _ in pairs if p == label)
        actual = sum(1 for _, r in pairs if r == label)
        if predicted == 0 and actual == 0:
            continue
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        scores[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return scores


def macro_f1(pairs: Iterable[tuple[str, str]], labels: tuple[str, ...] = MOVES) -> float:
    """Macro-averaged F1 of (predicted, reference) labels over the labels that occur."""
    scores = f1_by_label(pairs, labels)
    return sum(scores.values()) / len(scores) if scores else 0.0


def rate(count: int, total: int) -> float:
    return count / total if total else 0.0
