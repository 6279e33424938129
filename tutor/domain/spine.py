"""The spine of a tutor turn: what the learner must come away with, as the planner decided it.

(a) the verdict on the learner's value: confirmed when right ("Yes, 13 is right."), named when
wrong, plainly or as a question about that value ("How did you get 350?"); (b) the hint rung's
content when a hint is asked or due (focus: the step's blanked sentence; partial: operation and
operands; bottom-out: the value); (c) one question toward the next needed step. The planner's own
turn is its spine in words; a model's draft is shown only if a check finds each element in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from tutor.domain.arithmetic import numbers_in
from tutor.domain.faithfulness import _OPERATION_WORDS, affirms, celebrates, negates
from tutor.domain.words import content_stems, sentences
from tutor.domain.steps import Step

CONFIRM, NAME_WRONG = "confirm", "name_wrong"  # verdicts
FOCUS_RUNG, PARTIAL_RUNG, BOTTOM_OUT_RUNG = "focus", "partial", "bottom_out"
_SYMBOLS = {"+": "+", "-": "−-–", "*": "×x*", "/": "÷/"}

NO_CONFIRMATION = "does not say the learner's value is right"
NO_MISTAKE_NAMED = "does not name the mistake"
NO_QUESTION_TOWARD_STEP = "asks nothing toward the next step"
NO_DECLINE = "does not say it gives a hint instead of the answer"
# "I can't give you the answer, but here's a hint.", "Not the answer, but a smaller step."
_DECLINES = re.compile(r"\b(?:can't|cannot|won't|will\s+not|not\s+going\s+to|not\s+the\s+answer|instead|hint"
                       r"|smaller\s+step|closer|together)\b", re.I)


def no_hint(rung: str) -> str:
    return f"does not give the {rung.replace('_', '-')} hint"


@dataclass(frozen=True)
class Spine:
    """The turn's required elements, and the planner's own words for them in three parts."""

    verdict: str = ""  # CONFIRM, NAME_WRONG or "" (no value to judge)
    value: Fraction | None = None  # the learner's value the verdict is about
    rung: str = ""  # the hint content the turn must carry: focus, partial, bottom_out or ""
    step: Step | None = None  # the step the hint is about
    # the step the turn's one question must be about (None: no question needed); `about_value`:
    # a question about the learner's value does too ("How did you get 350?")
    question_step: Step | None = None
    about_value: bool = False
    questions: int = 1  # the most questions the turn may ask (the planner's own count)
    celebration: bool = False  # the verdict is a celebration: the problem is solved
    declines: bool = False  # the learner asked for the answer: the turn says it gives a hint instead
    opening: str = ""  # the verdict in the planner's words
    content: str = ""  # the rung's content (it may end with the question)
    ask: str = ""  # the question, when the content does not ask it

    @property
    def text(self) -> str:
        return joined(self.opening, self.content, self.ask)


def joined(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def spine_reasons(text: str, spine: Spine) -> tuple[str, ...]:
    """Each element of the spine the text does not carry."""
    done, rest = sentences(text)
    parts = done + ([rest] if rest else [])
    reasons = []
    if spine.verdict == CONFIRM and not any(confirms(part, spine) for part in parts):
        reasons.append(NO_CONFIRMATION)
    if spine.verdict == NAME_WRONG and not names_mistake(parts, spine.value):
        reasons.append(NO_MISTAKE_NAMED)
    if spine.rung and spine.step is not None and not carries_rung(text, spine.rung, spine.step):
        reasons.append(no_hint(spine.rung))
    if (spine.question_step is not None or spine.about_value) and not asks_toward(parts, spine):
        reasons.append(NO_QUESTION_TOWARD_STEP)
    if spine.declines and not _DECLINES.search(text):
        reasons.append(NO_DECLINE)
    return tuple(reasons)


def confirms(sentence: str, spine: Spine) -> bool:
    """The sentence tells the learner they are right ("Yes, 13 hours is right.", "This is
    correct."); a celebration, that they solved it, naming the answer ("Yes, 480 pounds is the
    answer!", not a bare "Good job!": the learner should leave knowing what the answer was)."""
    if spine.celebration:
        return (spine.value is None or spine.value in numbers_in(sentence)) and (affirms(sentence) or celebrates(sentence))
    return affirms(sentence)


def names_mistake(parts: list[str], value: Fraction | None) -> bool:
    """A sentence says the value is wrong, or asks about that value ("How did you get 350?")."""
    return any(negates(part) or (value is not None and part.rstrip().endswith("?") and value in numbers_in(part))
               for part in parts)


def carries_rung(text: str, rung: str, step: Step) -> bool:
    """The hint's content is in the text: a focus hint names the step's quantities or its words
    (two or more of them, or its blanked sentence), a partial hint the operation and every
    operand (two of a longer calculation's), a bottom-out the step's value."""
    numbers = set(numbers_in(text))
    if rung == BOTTOM_OUT_RUNG:
        return step.value in numbers or step.amount in numbers
    if rung == PARTIAL_RUNG:  # a longer calculation's first part will do ("First work out 1 + 3")
        named = len(set(step.operands) & numbers) >= 2 if len(step.operands) > 2 else set(step.operands) <= numbers
        return named and names_operation(text, step)
    words = content_stems(text) & content_stems(step.description)
    return "___" in text or bool(numbers & set(step.operands)) or len(words) >= 2


def names_operation(text: str, step: Step) -> bool:
    """The text names one of the step's operations, by symbol or by word."""
    operators = [t for t in step.expression.split() if t in _OPERATION_WORDS]
    words = content_stems(text)
    return any(words & _OPERATION_WORDS[o] or any(s in text for s in _SYMBOLS[o]) for o in operators)


# a question toward a step asks for something: a value, a calculation, the learner's working
# ("1 − (1 ÷ 3) isn't that some kind of shorthand?" asks nothing of the step)
_ASKS_FOR = re.compile(r"\b(?:what|how|which|why|calculate|work(?:ed)?\s+out|find|figure|equals?|tell|more\s+or\s+less"
                       r"|(?:did|can|could|would|will|do)\s+you)\b|=|___", re.I)


def asks_toward(parts: list[str], spine: Spine) -> bool:
    """One of the questions is about the step the turn moves toward (its numbers, operation or
    words), or about the learner's value when the turn asks about that."""
    questions = [part for part in parts if part.rstrip().endswith("?") and _ASKS_FOR.search(part)]
    step = spine.question_step
    for question in questions:
        if spine.about_value and spine.value is not None and spine.value in numbers_in(question):
            return True
        if step is not None and (set(numbers_in(question)) & set(step.operands) or "___" in question
                                 or content_stems(question) & content_stems(step.description)
                                 or names_operation(question, step)):
            return True
    return False



def questions_in(text: str) -> int:
    """How many questions the text asks (sentences ending with "?")."""
    done, rest = sentences(text)
    return sum(part.rstrip().endswith("?") for part in done + ([rest] if rest else []))
