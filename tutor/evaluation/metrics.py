"""Metric definitions, pinned by tests on hand-made dialogues."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from fractions import Fraction

from tutor.domain.arithmetic import numbers_in
from tutor.domain.dialogues import MOVES
from tutor.domain.faithfulness import Judgement, check_turn
from tutor.domain.form import form_faults, tidy
from tutor.domain.guard import HARMLESS, GuardContext, check
from tutor.domain.repeats import question_sentences
from tutor.domain.spine import NO_CONFIRMATION, NO_MISTAKE_NAMED, Spine, carries_rung, spine_reasons
from tutor.domain.truth import false_statements
from tutor.domain.words import sentences


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
    return not check_turn(text, replace(judgement, facts=None, check_form=False, recent=()))


# The words issue's rates: each a property of one turn's text, given what the planner decided
# (its spine) and what the turn is held to (its judgement). None: the rate does not apply.

def verdict_stated(text: str, spine: Spine) -> bool | None:
    """After a graded value: a right one confirmed, a wrong one named (None: no value graded)."""
    if not spine.verdict:
        return None
    return not {NO_CONFIRMATION, NO_MISTAKE_NAMED} & set(spine_reasons(text, spine))


def hint_content(text: str, spine: Spine) -> bool | None:
    """When a hint is asked or due: the rung's content is in the text (None: no hint due)."""
    if not spine.rung or spine.step is None:
        return None
    return carries_rung(text, spine.rung, spine.step)


def _parts(text: str) -> list[str]:
    done, rest = sentences(text)
    return done + ([rest] if rest else [])


def false_fact(text: str, judgement: Judgement) -> bool:
    """A statement of the text ties a number or a thing to the problem wrongly, suggests a
    calculation no step makes, or says the learner said what they did not (`truth`)."""
    return judgement.facts is not None and any(false_statements(part, judgement.facts) for part in _parts(text))


def form_fault(text: str, judgement: Judgement) -> bool:
    """The text as it stands (a raw draft is not tidied) has a form fault: a lower-case start, a
    list marker, " ?", a bracket left open, a stage direction, a word that is not English, more
    questions than the planner asks."""
    return (tidy(text) != text or any(form_faults(part, judgement.words) for part in _parts(text))
            or len(question_sentences(text)) > max(1, judgement.questions))


def repeat_question(text: str, judgement: Judgement) -> bool:
    """The text asks what one of the last two tutor turns asked, and the learner did not just
    try to answer it."""
    return not judgement.learner_tried and bool(judgement.repeats.repeated(text, judgement.recent))


def share(flags: Iterable[bool | None]) -> float | None:
    """The share of True among the flags that apply (None: none applies)."""
    counted = [flag for flag in flags if flag is not None]
    return sum(counted) / len(counted) if counted else None


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
