"""The guard on every generated tutor turn: no early final answer, no unlicensed numbers.

A number in a tutor turn must be a given quantity, a value the learner already produced (or
was shown), or one the current move may reveal. This makes the leak rate a property of code,
not of the model: a draft that fails is replaced by the planner's own phrasing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from tutor.domain.arithmetic import expressions_in, format_number, numbers_in, tokens

# Small numbers that turn up in ordinary phrasing ("one step", "two numbers", "100%").
HARMLESS = frozenset({Fraction(0), Fraction(1), Fraction(2), Fraction(100)})
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_SPACED_DIGITS = re.compile(r"\b\d(?:[\s\-_*]+\d\b)+")


@dataclass(frozen=True)
class GuardContext:
    final_answer: Fraction | None
    final_allowed: bool = False  # the learner stated it already, or the policy allows it now
    allowed: frozenset[Fraction] = frozenset()  # givens, learner's values, shown values, reveals
    # a partial hint on the last step may ask "what is 200 + 300?": the answer's expression
    # as a question, never its value
    question_expression_ok: bool = False
    # for model drafts of a focus/probing move: it must ask the learner something
    requires_question: bool = False
    max_chars: int | None = None


NO_QUESTION = "does not ask the learner anything"


@dataclass(frozen=True)
class GuardResult:
    reasons: tuple[str, ...] = field(default_factory=tuple)
    leaked_final: bool = False

    @property
    def ok(self) -> bool:
        return not self.reasons


def check(draft: str, context: GuardContext) -> GuardResult:
    reasons: list[str] = []
    leaked = False
    if context.max_chars is not None and len(draft) > context.max_chars:
        reasons.append(f"is longer than {context.max_chars} characters")
    if context.requires_question and "?" not in draft:
        reasons.append(NO_QUESTION)
    final = context.final_answer
    if final is not None and not context.final_allowed:
        leak = _final_answer_leak(draft, final, context.question_expression_ok)
        if leak:
            reasons.append(leak)
            leaked = True
    allowed = context.allowed | HARMLESS | ({final} if context.final_allowed and final is not None else set())
    for number in numbers_in(draft):
        if number not in allowed and number / 100 not in allowed and number * 100 not in allowed:
            if leaked and number == final:
                continue
            reasons.append(f"mentions {format_number(number)}, which is neither given, the "
                           "learner's, nor allowed yet")
    return GuardResult(tuple(dict.fromkeys(reasons)), leaked)


def _final_answer_leak(draft: str, final: Fraction, question_expression_ok: bool) -> str | None:
    shown = format_number(final)
    if final in numbers_in(draft):
        return f"states the final answer {shown}"
    for run in _SPACED_DIGITS.findall(draft):
        if Fraction(re.sub(r"\D", "", run)) == final:
            return f"spells out the final answer {shown} digit by digit"
    for sentence in _SENTENCE.findall(draft) or [draft]:
        for expression, value in expressions_in(tokens(sentence)):
            if value == final and " " in expression:
                if question_expression_ok and sentence.rstrip().endswith("?"):
                    continue
                return f"gives the final answer {shown} as {expression}"
    # across sentences: "It's 250. Double that." -> 250 and 2 * ... evaluate over the whole text
    for expression, value in expressions_in(tokens(draft)):
        if value == final and " " in expression and not question_expression_ok:
            return f"gives the final answer {shown} as {expression}"
    return None
