"""Grade a learner's message against the current step and the final answer, in code.

The language model is never asked whether an answer is right: SymPy is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from fractions import Fraction

from tutor.domain.arithmetic import (
    close_enough,
    expressions_in,
    numbers_in,
    stated_calculations,
    tokens,
    whole_expressions,
)
from tutor.domain.steps import Step, UnverifiedLine, parse_step
from tutor.domain.words import content_stems, stem


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
    r"|\bi\s+(?:just\s+)?(?:want|need)\s+(?:the|to know the)\s+(?:answer|result|solution)"
    # "just tell me", "tell me pls", "give it to me": nothing else asked for
    r"|\bjust\s+(?:tell|give|show)\s+me(?:\s+(?:it|already|now|please|pls|what\s+it\s+is))*\W*$"
    r"|^\W*(?:pls\s+|please\s+|can\s+you\s+|could\s+you\s+)?(?:tell|give|show)\s+(?:me|us)"
    r"(?:\s+(?:it|now|already|please|pls))*\W*$"
    r"|\bgive\s+it\s+to\s+me\b",
    re.I,
)
_STUCK = re.compile(
    r"\b(?:i\s*(?:do\s*n[o']?t|dont|have\s+no)\s+(?:know|idea|get\s+it|understand)"
    r"|idk|no\s+idea|not\s+sure|i'?m\s+(?:stuck|lost|confused)|stuck|confused|no\s+clue"
    r"|help(?:\s+me)?|hint|where\s+do\s+i\s+(?:start|begin)|how\s+(?:do\s+i|to)\s+(?:start|begin)|dunno|i\s+give\s+up"
    r"|what(?:'?s|\s+is|\s+comes)?\s+next|what\s+now|now\s+what|what\s+(?:do|should)\s+i\s+do)\b",
    re.I,
)
# A message that puts a number forward as its answer, even one the problem gives.
_ANSWER_CUE = re.compile(r"^\W*(?:(?:i\s+)?think|is\s+it|maybe|it'?s|its|the\s+answer\s+is|answer|so|=)?\W*[$€]?\d[\d,.]*\W*$"
                         r"|^\W*(?:i\s+think|is\s+it|maybe|it'?s|its|the\s+answer\s+is)\b[^a-z]*[$€]?\d", re.I)
# "the answer is 10", "my answer = 10": a value put forward as the problem's answer
_AS_ANSWER = re.compile(r"\b(?:the|my|final)\s+(?:final\s+)?answer\s+(?:is|=|would\s+be|will\s+be)\b", re.I)
# A question about the tutoring itself ("why is that wrong", "what do you mean"): never off topic.
_ABOUT_THE_WORK = re.compile(r"\b(?:wrong|right|correct|mean|means|meant|why|how)\b", re.I)
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
    # the learner's right calculation when no step makes it (a valid step on another route;
    # step_index None), or the one they wrote on their own problem
    expression: str = ""
    # a right value that the learner's message goes on to a wrong conclusion from ("3 x 50 = 150,
    # so the desk costs 350"): the step is done, and the conclusion is wrong
    wrong: Fraction | None = None
    as_answer: bool = False  # a step's right value put forward as the answer ("the answer is 10")
    # the judgement reads one value out of a worked solution that holds several (a long
    # message): teachers react to any of them, so the words are not held to it
    certain: bool = True


def attempt_values(text: str, givens: set[Fraction]) -> list[Fraction]:
    """Numbers the learner puts forward as results: what follows '=', the values of the whole
    calculations they wrote ("is it 60+4+9" is 73, not 64 nor 13), and the numbers they state
    that are neither given in the problem nor operands of their calculations."""
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
        for expression, value, parts in whole_expressions(found):
            values.append(value)
            if not re.fullmatch(r"\( [\d.]+ / 100 \)", expression):  # "30%" is 0.3, and still the learner's 30
                operands |= set(parts)
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
    graded = _grade(text, steps, current, final_answer, givens, problem_text)
    if len(text.split()) > SHORT and len(attempt_values(text, givens)) > 1:
        return replace(graded, certain=False)
    return graded


def _grade(text: str, steps: tuple[Step, ...], current: int, final_answer: Fraction | None, givens: set[Fraction],
           problem_text: str) -> Grade:
    if _ASKS_FOR_ANSWER.search(text):
        return Grade(LearnerState.ASKS_FOR_ANSWER)
    if not steps:
        # No verified solution (a learner's own problem): check the arithmetic they write.
        try:
            step = parse_step(text)
        except UnverifiedLine:
            return Grade(LearnerState.PARTIAL)
        if step is not None:
            return Grade(LearnerState.CORRECT, step.value, expression=step.expression)
    # A value that happens to be given in the problem still counts when it is the right one;
    # otherwise restating the givens is not an attempt.
    stated = attempt_values(text, set())
    values = attempt_values(text, givens)
    if not values and _ANSWER_CUE.search(text):
        values = stated  # "i think 5", "is it 5?": a given number put forward as the answer
    said = _said(text)
    worked_out = {expression for expression, _, _ in stated_calculations(tokens(text))}  # "7 x 2 = 10": a result
    if current < len(steps) - 1 and _unworked(text, steps[current], said, worked_out):
        # the step's calculation, not worked out ("is it 2 times 160"): right, and theirs to work
        # out; the tutor does not credit them with a value they did not say
        return Grade(LearnerState.CORRECT, None, None, expression=steps[current].expression)
    # The current step first: an intermediate value may equal the final answer (10 then 10).
    if current < len(steps) - 1:
        for value in stated:
            if _matches(value, steps[current].value, steps[current]):
                return _concluded(_about(text, steps, current, value, problem_text), text, steps, givens)
    # the final answer finishes the problem when it is the learner's conclusion (a long wrong
    # solution may pass through the answer's value on the way to another), said as a number: a
    # calculation left for the tutor to work out ("we can divide 126 by 14") is not an answer
    conclusion = _last_sentence(text)
    concluded = [v for v in attempt_values(conclusion, set()) if v in _said(conclusion)]
    if final_answer is not None and any(_matches(v, final_answer, steps[-1] if steps else None)
                                        for v in concluded):
        ours, other = _said_as_the_answer(text, final_answer, steps, givens, problem_text)
        if ours and other is None:
            return Grade(LearnerState.CORRECT, final_answer, len(steps) - 1 if steps else None, final=True)
        if ours:
            return Grade(LearnerState.INCORRECT, other, min(current, len(steps) - 1), certain=False)
        # the answer's value, of another quantity: neither their answer nor a wrong one
        values = [v for v in values if v != final_answer]
    last = steps[-1] if steps else None
    if last is not None and current >= len(steps) - 2 and _unworked(text, last, said, worked_out):
        # the last step's calculation, not worked out: right, and theirs to work out
        return Grade(LearnerState.CORRECT, None, None, expression=last.expression)
    for index in range(current + 1, len(steps)):
        for value in values:
            if index == len(steps) - 1 and value not in said:
                continue
            if _matches(value, steps[index].value, steps[index]):
                if index == len(steps) - 1:
                    ours, other = _said_as_the_answer(text, value, steps, givens, problem_text)
                    if not ours:
                        values = [v for v in values if v != value]
                        break
                    if other is not None:
                        return Grade(LearnerState.INCORRECT, other, current, certain=False)
                return _concluded(_about(text, steps, index, value, problem_text), text, steps, givens)
    if current < len(steps) and values:
        step = steps[current]
        slipped = [v for v in values if _decimal_slip(v, step.value)]  # "500" for 50: that is what is off
        if slipped or _same_calculation(text, step):
            return Grade(LearnerState.PARTIAL, (slipped or values)[0], current)
        earlier = {step.value: index for index, step in enumerate(steps[:current])}
        true_results = {stated for _, value, stated in stated_calculations(tokens(text)) if value == stated}
        fresh = [v for v in values if v not in earlier]
        wrong = [v for v in fresh if v not in true_results]
        if wrong:
            return Grade(LearnerState.INCORRECT, wrong[0], current)
        other_route = _other_route(text, givens | set(earlier)) if len(text.split()) <= SHORT else None
        if other_route is not None:
            expression, value = other_route
            return Grade(LearnerState.CORRECT, value, None, expression=expression)
        if fresh:
            return Grade(LearnerState.INCORRECT, fresh[0], current)
        # a step they have already done, said again ("ok 13 hours"): right, nothing new
        done = [v for v in values if v in earlier]
        if done and done[0] in step.operands and len(text.split()) <= 3:
            # "960" asked 960 − 40: an earlier value, but as this step's answer it is where it starts
            return Grade(LearnerState.INCORRECT, done[0], current)
        if done:
            said = _about(text, steps, earlier[done[0]], done[0], problem_text)
            return said if said.state is LearnerState.CORRECT else Grade(LearnerState.INCORRECT, done[0], current)
    if _STUCK.search(text):
        return Grade(LearnerState.STUCK)
    asks = text.rstrip().endswith("?") or bool(_QUESTION_START.match(text))
    if asks and _ABOUT_THE_WORK.search(text):
        return Grade(LearnerState.QUESTION)
    if problem_text and is_off_topic(text, problem_text):
        return Grade(LearnerState.OFF_TOPIC)
    if asks:
        return Grade(LearnerState.QUESTION)
    return Grade(LearnerState.UNCLEAR)


# what a number in a message is a number of: money, or the words after it ("20 key chains")
_QUANTITY = re.compile(r"([$€]\s*)?(?<![\d.,])(\d+(?:,\d{3})*(?:\.\d+)?)(?![\d%/])(?:\s*([A-Za-z]+)(?:\s+([A-Za-z]+))?)?")
_MONEY = frozenset({"$"})
_MONEY_WORDS = frozenset({"dollar", "buck", "cash", "money", "cent"})  # stems


def _mentions(text: str, stems: set[str]) -> list[tuple[Fraction, frozenset[str]]]:
    """Each number in a text, in order, with what it counts: {"$"} for money, else the stems
    of the (up to two) words after it that the problem uses ("20 key chains": key, chain);
    empty where it is said bare."""
    found = []
    for match in _QUANTITY.finditer(text):
        try:
            number = Fraction(match.group(2).replace(",", ""))
        except (ValueError, ZeroDivisionError):
            continue
        words = [w for w in (match.group(3), match.group(4)) if w]
        if match.group(1) or {stem(w) for w in words} & _MONEY_WORDS:
            found.append((number, _MONEY))
        else:
            found.append((number, frozenset(stem(w) for w in words) & stems))
    return found


def _said_as_the_answer(text: str, value: Fraction, steps: tuple[Step, ...], givens: set[Fraction],
                        problem_text: str) -> tuple[bool, Fraction | None]:
    """Whether a message says the final answer's value as the quantity the question asks for
    (not where every mention is money and the answer is not, or the other way round: "20 key
    chains" when the answer is $20; nor where every mention counts something else while another
    number counts what the answer does), and the other value it goes on to give as that quantity,
    if any ("20 x $4 = $80" after the $20 the answer is): then that is the learner's answer."""
    if not steps:
        return True, None
    last = steps[-1]
    stems = content_stems(problem_text) | content_stems(" ".join(step.description for step in steps))
    # the solution line's last mention of its value counts what it found ("20 key chains ... = $20": money)
    kind = next((k for n, k in reversed(_mentions(last.description, stems)) if n == last.value and k), frozenset())
    if not kind:
        return True, None
    mentions = _mentions(text, stems)
    said = [k for n, k in mentions if _matches(n, value, last)]
    if said and all(k and ((k == _MONEY) != (kind == _MONEY)) for k in said):
        return False, None
    if said and all(k and not k & kind for k in said) and any(k & kind for _, k in mentions):
        return False, None  # "60 cups for the final meal, since ... there are 20 chickens": 20 is no cups
    # after the last time the value is said as the answer ("20 weeks" is not $20), if it is
    after = max((i for i, (n, k) in enumerate(mentions) if _matches(n, value, last) and (not k or k & kind)),
                default=-1)
    right = {step.value for step in steps} | givens
    other = [number for number, counts in mentions[after + 1:] if number not in right and counts & kind]
    return True, (other[-1] if other else None)  # the last: what the message concludes with


def _unworked(text: str, step: Step, said: set[Fraction], worked_out: set[str]) -> bool:
    """The message makes the step's calculation without saying its result."""
    return step.value not in said and _same_calculation(text, step) and step.expression not in worked_out


def _said(text: str) -> set[Fraction]:
    """The values a text says outright: its numbers, fractions written as such ("1/2", not
    "divide 126 by 14") and shares ("50%")."""
    fractions = {Fraction(int(a), int(b)) for a, b in re.findall(r"(?<![\d.])(\d+)/(\d+)(?![\d.])", text) if int(b)}
    shares = {Fraction(number.replace(",", "")) / 100 for number in re.findall(r"(\d[\d,]*(?:\.\d+)?)\s*%", text)}
    return set(numbers_in(text)) | fractions | shares


def _concluded(graded: Grade, text: str, steps: tuple[Step, ...], givens: set[Fraction]) -> Grade:
    """A right value, with the wrong value the message concludes with, if it goes on to one."""
    if graded.state is not LearnerState.CORRECT or graded.final:
        return graded
    right = {step.value for step in steps} | {step.amount for step in steps}
    concluded = [v for v in attempt_values(_last_sentence(text), givens) if v not in right]
    if concluded:
        return replace(graded, wrong=concluded[-1])
    return replace(graded, as_answer=bool(_AS_ANSWER.search(text)))


_CLAUSE = re.compile(r"[.;!?\n]+|,\s*|\s+(?:and|so|then|because|but|since|which)\s+", re.I)


def _about(text: str, steps: tuple[Step, ...], index: int, value: Fraction, problem_text: str) -> Grade:
    """A right value for step `index`, unless the learner says it of something else: "Hooper Bay
    has 160" names Hooper Bay, which another step (with another value) is about and this one is
    not, so the value is not this step's. Only the clause that says the value is read."""
    clauses = [clause for clause in _CLAUSE.split(text) if value in numbers_in(clause)]
    if problem_text and clauses:
        named = content_stems(clauses[-1]) & names_in(problem_text)
        own = content_stems(steps[index].description)
        for other, step in enumerate(steps):
            if other != index and step.value != value and (named - own) & content_stems(step.description):
                return Grade(LearnerState.INCORRECT, value, index)
    return Grade(LearnerState.CORRECT, value, index)


def names_in(text: str) -> set[str]:
    """Stems of the names a text uses (capitalised within a sentence: "Hooper Bay", "Carmen")."""
    return {stem(word) for word in re.findall(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+)", text.strip())}


# Words in a message short enough to be one step's working: a longer one is a whole solution,
# whose true calculations may lead anywhere ("200 + 50 + 50 + 50 = 350" is arithmetic, not a step).
SHORT = 12


def _other_route(text: str, known: set[Fraction]) -> tuple[str, Fraction] | None:
    """A calculation the learner wrote (in a short message) that is right and uses only the
    problem's numbers and values already found, though no step of the worked solution makes it
    ("60 x 4 = 240" on the way to 60 x 13): a valid step on another route."""
    for expression, value, stated in stated_calculations(tokens(text)):
        operands = {Fraction(t) for t in expression.split() if t[0].isdigit() or t[0] == "."}
        if value == stated and operands <= known | {Fraction(1), Fraction(2)}:
            return expression, value
    return None


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
    return any(expression.replace(" ", "") == wanted for expression, _, _ in whole_expressions(tokens(text)))


def _decimal_slip(value: Fraction, target: Fraction) -> bool:
    return target != 0 and value != target and value / target in {10, 100, Fraction(1, 10), Fraction(1, 100)}
