"""Truth: what a tutor turn states about the problem and the learner must be so.

- a thing the problem, its steps and the learner never name cannot be counted ("two days" in a
  problem without days; tutoring language such as "3 times" or "2 people" in an example can,
  unless word problems count it), and "the number of X is N" must be a number they tie to X (the number
  of people is 3, not 50); a number that merely stands next to a word is left alone, as
  "12 downstairs" is how a teacher says "12 windows downstairs";
- a calculation it suggests ("divide 12 by 4", "what is 150 + 50?") must be one a step makes
  (its operands and operations) or the learner's own; one it states with its result is
  arithmetic, true or false (`arithmetic.false_calculations`), and a fraction ("9/10") or a
  share ("30%") is a number, not a calculation;
- it does not say the learner said or did what they did not ("you got 350", "explain your
  solution again" before they explained anything);
- after the problem is solved, nothing says work remains, and before, nothing says it is solved;
- it does not ask for a step the learner has already done ("What is 80 + 80?" after 160).

Each rule decides with high precision: a statement it cannot read is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from tutor.domain.arithmetic import (
    format_number,
    normalise,
    numbers_in,
    parse_number,
    tokens,
    whole_expressions,
    words_to_digits,
)
from tutor.domain.steps import Step
from tutor.domain.words import STOPWORDS, content_stems, counted_nouns, counted_plurals, is_english, stem

_TOKEN = re.compile(r"[$€]?\d[\d,]*(?:\.\d+)?%?|[A-Za-z]+(?:'[a-z]+)?")
# words between a number and what it counts: "3 more cookies", "2 other harbors"
_BETWEEN = frozenset("""more less fewer other extra additional total different new old whole full same
another first second third last big small large little single double long short whole""".split())
# "the number of people is 50", "the total of bids was 3"
_NUMBER_OF = re.compile(r"\b(?:number|amount|count)\s+of\s+([A-Za-z]+)(?:\s+[a-z]+)?\s+(?:is|are|was|were)\s+"
                        r"(?:about\s+|only\s+|just\s+)?[$€]?(\d[\d,]*(?:\.\d+)?)", re.I)
_SAID_OR_DID = re.compile(
    r"\byou(?:'ve| have)?\s+(?:just\s+|already\s+)?(?:said|wrote|written|got|gotten|found|calculated|worked out"
    r"|told me|mentioned|gave|answered|added|multiplied|subtracted|divided)\b([^.?!]*)", re.I)
_AGAIN = re.compile(r"\b(?:explain|tell me|walk me through|talk me through|show me|go over)\b[^.?!]*\bagain\b", re.I)
_WORK_REMAINS = re.compile(
    r"\b(?:next|now we|now let's|now you|let's (?:find|work|figure|look|think)|still (?:need|have to)"
    r"|remaining|what about|one more|we need to|you need to|think about"
    r"|how (?:many|much|long|far|old)|what (?:is|are|was|were|does|do)\b[^?]*\d)\b", re.I)
_SOLVED_CLAIM = re.compile(r"\byou(?:'ve| have)?\s+(?:(?:just|now|correctly)\s+)?(?:solved|finished|completed)\b"
                           r"[^.?!]*\b(?:problem|question|it|puzzle)\b|\byou\s+solved\s+it\b", re.I)
# a number called wrong: "25 is wrong", "11 isn't there", "13 is not possible"
_DISMISSED = re.compile(r"(?<![\d.,*/+\-=])\s*([$€]?\d[\d,]*(?:\.\d+)?)\s+(?:(?:is\s+not|isn't)\s+(?:quite\s+)?"
                        r"(?:right|correct|possible|there)|is\s+(?:wrong|incorrect|impossible))\b", re.I)
# a value given as what something should be: "it should be 100", "the answer is 100"
_CLAIMED_VALUE = re.compile(r"\b(?:should|must|would|will)\s+be\s+([$€]?\d[\d,]*(?:\.\d+)?)"
                            r"|\banswer\s+is\s+([$€]?\d[\d,]*(?:\.\d+)?)", re.I)
_ANOTHER_PROBLEM = re.compile(r"\banother (?:problem|one|question)\b", re.I)


# short forms of units: "40 mins" counts what "minutes" does
_SHORT_UNITS = {"min": "minutes", "mins": "minutes", "hr": "hours", "hrs": "hours", "sec": "seconds",
                "secs": "seconds", "lbs": "pounds", "lb": "pounds", "kg": "kilograms", "km": "kilometers"}
_UNITS = re.compile(rf"\b(?:{'|'.join(_SHORT_UNITS)})\b", re.I)


# What a problem measures in: counting in one it does not use is false ("two days" in a problem
# in hours), however often teachers say the word elsewhere.
_MEASURES = frozenset(stem(word) for word in """days weeks months years hours minutes seconds miles meters
kilometers feet inches yards pounds kilograms grams ounces gallons liters dollars cents euros""".split())


def _unit(match: re.Match) -> str:
    return _SHORT_UNITS[match.group(0).lower()]


def counted(text: str) -> set[tuple[Fraction, str]]:
    """(number, stem of what it counts) for each number written before a word: "3 other people"
    -> (3, people), "two days" -> (2, day); not a share ("80%", "9/10 of") nor an operand
    ("10 x 6 minutes")."""
    text = words_to_digits(text)
    found: set[tuple[Fraction, str]] = set()
    for match in _COUNTED_NUMBER.finditer(text):
        following = [w for w in _TOKEN.findall(text[match.end():match.end() + 40])][:3]
        for word in following:
            lower = word.lower()
            if word[0].isdigit() or word[0] in "$€":
                break
            if lower in STOPWORDS or lower in _BETWEEN:
                continue
            found.add((parse_number(match.group(1)), stem(word)))
            break
    return found


def claimed(text: str) -> set[tuple[Fraction, str]]:
    """(number, thing) a text claims outright: "the number of people is 50" -> (50, people)."""
    return {(parse_number(number), stem(thing)) for thing, number in _NUMBER_OF.findall(words_to_digits(text))}


# a number standing alone before words: not after or before an operator, "/" or "=", not a share
_COUNTED_NUMBER = re.compile(r"(?<![\d.,/*x×=+\-−])(?<![\d.,/*x×=+\-−]\s)[$€]?(\d[\d,]*(?:\.\d+)?)(?![\d%/])"
                             r"(?!\s*(?:[/*x×=+\-−%]|percent))")


_FRACTION = re.compile(r"(?<![\d.])\d+/\d+(?![\d.])")
_SHARE = re.compile(r"(?<![\d.])\d[\d.,]*\s*(?:%|percent\b)")


# numbers and operators with nothing else between them: a calculation as written ("150 + 50",
# "2 * (5 + 1.50)"), not "2 rabbits for every cat - so if there are 4 cats"
_NUMBER = r"\(?\s*[$€]?\d[\d,]*(?:\.\d+)?\s*\)?"
_WRITTEN = re.compile(rf"{_NUMBER}(?:\s*[-+*/]\s*{_NUMBER})+")


def suggested_calculations(sentence: str) -> list[str]:
    """Calculations a sentence asks for or tells the learner to do, without stating their
    result: "What is 150 + 50?", "divide 12 by 4" (not "3 x 50 = 150", "multiply 0.6 by 90 to
    get 54", a fraction "9/10" or a share "30%")."""
    text = normalise(_FRACTION.sub(" ", _SHARE.sub(" ", sentence)))
    stated = set(numbers_in(sentence))
    suggested = []
    for written in _WRITTEN.finditer(text):
        for expression, value, operands in whole_expressions(tokens(written.group(0))):
            if len(operands) >= 2 and value not in stated:  # with its result: arithmetic, checked as such
                suggested.append(expression)
    return suggested


def _operands(expression: str) -> list[Fraction]:
    return [Fraction(t) for t in expression.split() if t[0].isdigit() or t[0] == "."]


def _ordered(expression: str) -> tuple[Fraction, Fraction, str] | None:
    """A subtraction or division of two numbers as (a, b, operator): "1800 - 1600"."""
    operands, operators = _operands(expression), _operators(expression)
    if len(operands) == 2 and len(operators) == 1 and operators <= {"-", "/"}:
        return operands[0], operands[1], operators.pop()
    return None


def _operators(expression: str) -> set[str]:
    return {t for t in expression.split() if t in ("+", "-", "*", "/")}


@dataclass(frozen=True)
class Facts:
    """What a tutor turn's statements are held to."""

    ties: frozenset[tuple[Fraction, str]] = frozenset()  # numbers counting things in the problem, steps, learner
    mentioned: frozenset[str] = frozenset()  # stems the problem, its steps and the learner name
    counted: frozenset[str] = frozenset()  # stems of what the problem and its steps count
    # what a tutor may count that the problem does not name: tutoring language ("3 times",
    # "2 people" in an example), but not a measure the problem does not use ("two days")
    common: frozenset[str] = frozenset()
    # (operands, operators) of each calculation a step or the learner makes
    calculations: tuple[tuple[frozenset[Fraction], frozenset[str]], ...] = ()
    # (a, b, operator) of each subtraction or division a step or the learner makes: order matters
    ordered: frozenset[tuple[Fraction, Fraction, str]] = frozenset()
    learner_numbers: frozenset[Fraction] = frozenset()
    latest_numbers: frozenset[Fraction] = frozenset()  # what the learner's latest message said
    learner_explained: bool = False  # the learner has explained some working (so "again" is true)
    done_steps: tuple[Step, ...] = ()
    current_step: Step | None = None
    solved: bool = False  # the turn celebrates the solution (of a learner's message read for certain): no work remains
    celebrating: bool = False  # the turn celebrates the solution: saying it is solved is true

    def numbers_for(self, thing: str) -> set[Fraction]:
        """The numbers the problem, its steps or the learner tie to this thing."""
        return {number for number, tied in self.ties if tied == thing}


def facts_of(problem_text: str, steps: Iterable[Step], learner_texts: Iterable[str], *,
             common: Iterable[str] = (), learner_values: Iterable[Fraction] = (),
             done: Iterable[int] = (), current: int | None = None, solved: bool = False,
             celebrating: bool = False) -> Facts:
    """The facts of a problem (its text, its verified steps) and of what the learner said."""
    steps = tuple(steps)
    learner_texts = [text for text in learner_texts if text]
    sources = [problem_text, *(step.description for step in steps), *learner_texts]
    tied = set().union(*(counted(text) | claimed(text) for text in sources)) if sources else set()
    calculations = [(frozenset(_operands(step.expression)), frozenset(_operators(step.expression))) for step in steps]
    # "2 × 160" is also 160 + 160: a small multiplication as repeated addition; "12 / 2" is also
    # half of 12, 1/2 * 12
    calculations += [(frozenset(_operands(step.expression)) - {factor}, frozenset("+")) for step in steps
                     if _operators(step.expression) == {"*"} for factor in _operands(step.expression)
                     if factor.denominator == 1 and 2 <= factor <= 4]
    calculations += [(frozenset(_operands(step.expression)) | {Fraction(1)}, frozenset("*/")) for step in steps
                     if "/" in _operators(step.expression)]
    learners = [(expression, parts) for text in learner_texts for expression, _, parts in whole_expressions(tokens(text))]
    calculations += [(frozenset(parts), frozenset(_operators(expression))) for expression, parts in learners]
    expressions = [step.expression for step in steps] + [expression for expression, _ in learners]
    ordered = {order for expression in expressions if (order := _ordered(expression))}
    said = {n for text in learner_texts for n in numbers_in(text)}
    mentioned = set().union(*(content_stems(_UNITS.sub(_unit, text)) for text in sources)) if sources else set()
    mentioned |= {"dollar" for text in sources if "$" in text} | {"euro" for text in sources if "€" in text}
    return Facts(
        ties=frozenset(tied), mentioned=frozenset(mentioned), common=frozenset(common),
        counted=frozenset(counted_nouns(" ".join([problem_text, *(step.description for step in steps)]))),
        calculations=tuple(calculations), ordered=frozenset(ordered),
        # what the learner said, and what their calculations came to ("60+4+9": 73)
        learner_numbers=frozenset(said | set(learner_values)),
        latest_numbers=frozenset(numbers_in(learner_texts[-1]) if learner_texts else ()),
        learner_explained=any(len(text.split()) >= 8 for text in learner_texts[:-1]),
        # steps the learner has done and said (not ones a later value skipped past)
        done_steps=tuple(steps[i] for i in done if i < len(steps) and steps[i].value in said),
        current_step=steps[current] if current is not None and current < len(steps) else None,
        solved=solved, celebrating=celebrating or solved)


FALSE_TIE = "ties a number to what the problem does not"
COUNTS_ABSENT = "counts what the problem does not have"
UNMADE_CALCULATION = "suggests a calculation no step makes"
FALSE_ATTRIBUTION = "says the learner said or did what they did not"
WORK_REMAINS = "says work remains after the problem is solved"
SOLVED_TOO_SOON = "says the problem is solved before it is"
GIVES_STEP_AWAY = "gives the step's value away"
CALLS_RIGHT_WRONG = "calls a value the learner got right wrong"
ASKS_DONE_STEP = "asks for a step the learner has done"


def false_statements(sentence: str, facts: Facts) -> list[str]:
    """Reasons the sentence states something untrue about the problem or the learner."""
    reasons = []
    for word in sorted(counted_plurals(_UNITS.sub(_unit, sentence))):
        thing = stem(word)
        if thing not in facts.mentioned and (thing in _MEASURES or (thing not in facts.common and is_english(word))):
            reasons.append(f"{COUNTS_ABSENT}: {thing}")
    for number, thing in sorted(claimed(sentence), key=lambda tie: (tie[1], tie[0])):
        if facts.numbers_for(thing) and (number, thing) not in facts.ties:  # counted otherwise
            reasons.append(f"{FALSE_TIE}: {format_number(number)} {thing}")
    for expression in suggested_calculations(sentence):
        parts, operators = set(_operands(expression)), _operators(expression)
        if not any(parts <= made and operators <= ops for made, ops in facts.calculations):
            reasons.append(f"{UNMADE_CALCULATION}: {expression}")
        elif (order := _ordered(expression)) and order not in facts.ordered and (
                (order[1], order[0], order[2]) in facts.ordered):  # "1600 minus 1800" for 1800 - 1600
            reasons.append(f"{UNMADE_CALCULATION}: {expression}")
    for clause in _SAID_OR_DID.findall(sentence):
        if not set(numbers_in(clause)) <= facts.learner_numbers:
            reasons.append(FALSE_ATTRIBUTION)
    if _AGAIN.search(sentence) and not facts.learner_explained:
        reasons.append(FALSE_ATTRIBUTION)
    question = sentence.rstrip().endswith("?")
    # a question about what the problem counts ("...if he only got rabbits?"), not "Do you understand?"
    about_problem = question and bool(content_stems(sentence) & facts.counted)
    if facts.solved and not _ANOTHER_PROBLEM.search(sentence) and (_WORK_REMAINS.search(sentence) or about_problem):
        reasons.append(WORK_REMAINS)
    if not facts.celebrating and _SOLVED_CLAIM.search(sentence):
        reasons.append(SOLVED_TOO_SOON)
    for number in map(parse_number, (found.lstrip("$€") for found in _DISMISSED.findall(normalise(sentence)))):
        if number not in facts.learner_numbers:  # "25 is wrong" when the learner never said 25
            reasons.append(FALSE_ATTRIBUTION)
        elif number in {step.value for step in facts.done_steps} and number not in facts.latest_numbers:
            # "11 isn't there" after 11 sets, right (the value just said may be wrong for this step)
            reasons.append(CALLS_RIGHT_WRONG)
    step = facts.current_step
    given_as = [number for found in _CLAIMED_VALUE.findall(sentence) for number in found if number]
    if step is not None and step.value not in facts.learner_numbers and any(
            parse_number(number.lstrip("$€")) == step.value for number in given_as):
        reasons.append(GIVES_STEP_AWAY)
    if question and not facts.solved and _asks_done_step(sentence, facts):
        reasons.append(ASKS_DONE_STEP)
    return list(dict.fromkeys(reasons))


_ASKS_RESULT = re.compile(r"\b(?:what(?:'s|\s+is|\s+are|\s+do\s+you\s+get|\s+does\s+that\s+make)|how\s+much\s+is"
                          r"|how\s+many\s+is|work\s+out|calculate|equals?\b)|=\s*\??$", re.I)


def _asks_done_step(question: str, facts: Facts) -> bool:
    """The question asks for the result of a done step's whole calculation, and names nothing
    of the current step's ("What is 80 + 80?" after 160; not "Why did you add 80 and 80?")."""
    if not _ASKS_RESULT.search(question):
        return False
    numbers = set(numbers_in(question))
    current = set(facts.current_step.operands) if facts.current_step else set()
    for step in facts.done_steps:
        operands = set(step.operands)
        if len(step.operands) >= 2 and operands <= numbers and not (current and current <= numbers):
            return True
    return False

