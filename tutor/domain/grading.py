"""Grade a learner's message against the current step and the final answer, in code.

The language model is never asked whether an answer is right: SymPy is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from tutor.domain.arithmetic import close_enough, expressions_in, numbers_in, tokens
from tutor.domain.steps import Step, UnverifiedLine, parse_step


class LearnerState(str, Enum):
    CORRECT = "correct"
    PARTIAL = "partially_correct"  # right idea, slip in the arithmetic
    INCORRECT = "incorrect"
    UNCLEAR = "unclear"
    QUESTION = "asks_question"
    ASKS_FOR_ANSWER = "asks_for_answer"
    STUCK = "stuck"
    OFF_TOPIC = "off_topic"


_ASKS_FOR_ANSWER = re.compile(
    r"\b(?:(?:just|pls|please|can you|could you|would you|will you|you)\s+)?"
    r"(?:tell|give|show|say|reveal|spill|type|write|share|provide|send)\s+(?:me\s+|us\s+)?"
    r"(?:the\s+|your\s+|what\s+(?:the|is the)\s+)?(?:final\s+|real\s+|correct\s+|right\s+)?"
    r"(?:answer|result|solution|number|total)"
    r"|\bwhat(?:'s| is| was)\s+the\s+(?:final\s+|correct\s+|right\s+)?(?:answer|solution|result)"
    r"|\b(?:solve|do|finish|answer)\s+(?:it|this|the problem|the question)\s+for\s+me"
    r"|\bjust\s+(?:the\s+)?(?:answer|number)\b"
    r"|\banswer\s+(?:please|pls|now)\b"
    r"|\bskip\s+(?:to\s+)?the\s+(?:answer|end)"
    r"|\bi\s+(?:just\s+)?(?:want|need)\s+(?:the|to know the)\s+(?:answer|result|solution)",
    re.I,
)
_STUCK = re.compile(
    r"\b(?:i\s*(?:do\s*n[o']?t|dont|have\s+no)\s+(?:know|idea|get\s+it|understand)"
    r"|idk|no\s+idea|not\s+sure|i'?m\s+(?:stuck|lost|confused)|stuck|confused|no\s+clue"
    r"|help(?:\s+me)?|hint|where\s+do\s+i\s+(?:start|begin))\b",
    re.I,
)
_QUESTION_START = re.compile(r"^\s*(?:what|how|why|which|when|where|who|is|are|do|does|can|should)\b", re.I)
_MATH_WORDS = re.compile(
    r"\b(?:add|plus|sum|total|minus|subtract|difference|times|multiply|product|divide|per|each|"
    r"half|twice|double|percent|fraction|answer|step|number|equals?|left|more|less|cost|price)\b",
    re.I,
)
_STOPWORDS = set("the a an and or of to in on at for is are was were be it its this that he she they "
                 "his her their them you your i my me we our with as by from so if then than".split())


@dataclass(frozen=True)
class Grade:
    state: LearnerState
    value: Fraction | None = None  # the number the judgement is about
    step_index: int | None = None  # the step that value completes (may be a later one)
    final: bool = False  # the learner stated the final answer


def attempt_values(text: str, givens: set[Fraction]) -> list[Fraction]:
    """Numbers the learner puts forward as results: what follows '=', the values of the
    expressions they wrote, and the numbers they state that are not given in the problem."""
    found = tokens(text)
    equals = [i for i, token in enumerate(found) if token.text == "="]
    values: list[Fraction] = []
    operands: set[Fraction] = set()
    if equals:
        # "3 x 50 = 140": the learner's result is what they wrote after '=', not what their
        # calculation would give, and the numbers they calculated with are not answers
        for start, index in zip([-1, *equals], equals):
            values += [value for _, value in expressions_in(found[index + 1:])[:1]]
            operands |= {Fraction(t.text) for t in found[start + 1:index] if t.kind == "number"}
    else:
        values += [value for expression, value in expressions_in(found) if " " in expression]
    values += [n for n in numbers_in(text) if n not in givens and n not in operands]
    unique: list[Fraction] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    return unique


def grade(
    text: str,
    steps: tuple[Step, ...],
    current: int,
    final_answer: Fraction | None,
    givens: set[Fraction],
    problem_text: str = "",
) -> Grade:
    """Judge the learner's message: is there an answer or step value in it, and is it right?"""
    if _ASKS_FOR_ANSWER.search(text):
        return Grade(LearnerState.ASKS_FOR_ANSWER)
    if not steps:
        # No verified solution (a learner's own problem): check the arithmetic they write.
        try:
            step = parse_step(text)
        except UnverifiedLine:
            return Grade(LearnerState.PARTIAL)
        if step is not None:
            return Grade(LearnerState.CORRECT, step.value)
    # A value that happens to be given in the problem still counts when it is the right one;
    # otherwise restating the givens is not an attempt.
    stated = attempt_values(text, set())
    values = attempt_values(text, givens)
    # The current step first: an intermediate value may equal the final answer (10 then 10).
    if current < len(steps) - 1:
        for value in stated:
            if _matches(value, steps[current].value, steps[current]):
                return Grade(LearnerState.CORRECT, value, current)
    # the final answer finishes the problem when it is the learner's conclusion: a long wrong
    # solution may pass through the answer's value on the way to another
    concluded = attempt_values(_last_sentence(text), set())
    if final_answer is not None and any(_matches(v, final_answer, steps[-1] if steps else None)
                                        for v in concluded):
        return Grade(LearnerState.CORRECT, final_answer, len(steps) - 1 if steps else None, final=True)
    for index in range(current + 1, len(steps)):
        for value in values:
            if _matches(value, steps[index].value, steps[index]):
                return Grade(LearnerState.CORRECT, value, index)
    if current < len(steps) and values:
        step = steps[current]
        if _same_calculation(text, step) or any(_decimal_slip(v, step.value) for v in values):
            return Grade(LearnerState.PARTIAL, values[0], current)
        earlier = {step.value for step in steps[:current]}
        fresh = [v for v in values if v not in earlier]
        if fresh:
            return Grade(LearnerState.INCORRECT, fresh[0], current)
    if _STUCK.search(text):
        return Grade(LearnerState.STUCK)
    if problem_text and is_off_topic(text, problem_text):
        return Grade(LearnerState.OFF_TOPIC)
    if text.rstrip().endswith("?") or _QUESTION_START.match(text):
        return Grade(LearnerState.QUESTION)
    return Grade(LearnerState.UNCLEAR)


_SENTENCE_BREAK = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z])")


def _last_sentence(text: str) -> str:
    parts = [part for part in _SENTENCE_BREAK.split(text.strip()) if numbers_in(part)]
    return parts[-1] if parts else text


def is_off_topic(text: str, problem_text: str) -> bool:
    """No numbers, no math words and no words in common with the problem."""
    if numbers_in(text) or _MATH_WORDS.search(text) or _STUCK.search(text):
        return False
    words = _content_words(text) - _STOPWORDS
    return len(words) >= 2 and not words & _content_words(problem_text)


def _content_words(text: str) -> set[str]:
    # crude stems are enough to see that "pack" is about a problem with "packs"
    return {re.sub(r"(?:es|s)$", "", w) for w in re.findall(r"[a-z]{3,}", text.lower())}


def _matches(value: Fraction, target: Fraction, step: Step | None) -> bool:
    decimals = step.decimals if step else None
    if close_enough(value, target, decimals if decimals else 2 if target.denominator != 1 else None):
        return True
    # a percentage may be given as a share (30% as 0.3) or a share as a percentage
    return bool(step and step.unit == "%" and value == step.amount)


def _same_calculation(text: str, step: Step) -> bool:
    """The learner wrote this step's calculation (same operands and operation)."""
    wanted = step.expression.replace(" ", "")
    return any(expression.replace(" ", "") == wanted for expression, _ in expressions_in(tokens(text)))


def _decimal_slip(value: Fraction, target: Fraction) -> bool:
    return target != 0 and value != target and value / target in {10, 100, Fraction(1, 10), Fraction(1, 100)}
