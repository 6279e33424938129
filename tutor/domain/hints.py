"""The planner's own words for each move: the spine of the turn, from verified steps.

Every turn says whether the learner's value was right, carries the hint rung's content when a
hint is asked or due, and asks one question toward the next needed step (`Spine`). A model's
draft must carry the same elements; when it does not, these words are what the learner reads.
A rung the learner has already seen is said another way (`variant`), never the same twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from tutor.domain.arithmetic import format_number
from tutor.domain.grading import Grade
from tutor.domain.planner import BOTTOM_OUT, FOCUS, PARTIAL, Move
from tutor.domain.repeats import question_sentences
from tutor.domain.spine import (
    BOTTOM_OUT_RUNG,
    CONFIRM,
    FOCUS_RUNG,
    NAME_WRONG,
    PARTIAL_RUNG,
    Spine,
)
from tutor.domain.steps import Step
from tutor.domain.words import STOPWORDS, content_stems, stem

_ABOUT_VERDICT = re.compile(r"\b(?:wrong|right|correct|mistake)\b", re.I)
_OPERATION = {"+": "Add {a} and {b}", "-": "Take {b} away from {a}", "*": "Multiply {a} by {b}",
              "/": "Divide {a} by {b}"}
_SYMBOL = {"+": "+", "-": "−", "*": "×", "/": "÷"}

_NUMBER_IN_TEXT = re.compile(r"[$€]?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?|[$€]?\.\d+%?")
_EQUALS = re.compile(r"=|\bequals\b")
# a calculation written with nothing but numbers and operators, right before '='
_WRITTEN_CALCULATION = re.compile(r"[$€(]*\d[\d.,$€%()\s]*(?:[-+*/x×÷][\d.,$€%()\s]*)+(?=\s*$)")
# a clause giving the calculation's reason after the result was said: "is 100 because ___"
_TRAILING_REASON = re.compile(r"[\s,;:]*\b(?:because|since|as|so|or)\b\s*\(?___\)?[\s.]*$", re.I)

SAFE_FOCUS = "Which numbers from the problem do we need for this step, and what should we do with them?"


def cloze(step: Step) -> str | None:
    """The step's sentence with its calculation and result blanked out, one blank:
    "He bought 40/5=8 boxes" -> "He bought ___ boxes"; "It is 100 because 20 x 5 = 100" ->
    "It is ___"."""
    text = step.description
    equals = list(_EQUALS.finditer(text))
    if not equals:
        return None
    region_start = equals[-2].end() if len(equals) > 1 else 0
    before = list(_NUMBER_IN_TEXT.finditer(text, region_start, equals[-1].start()))
    after = _NUMBER_IN_TEXT.search(text, equals[-1].end())
    if not before or after is None:
        return None
    written = _WRITTEN_CALCULATION.search(text, region_start, equals[-1].start())
    if written:  # numbers and operators only before '=': "$25*4", "1 - (1/3)", "(8*4)-5"
        start = written.start()
    else:  # words between the numbers ("3 bids * $50 per bid"): as many numbers as it has
        wanted = max(1, len(step.operands) - step.expression.count("/ 100 )"))
        start = before[-min(wanted, len(before))].start()
        while start > region_start and text[start - 1] in "( $€":
            start -= 1
    space = " " if start and text[start - 1].isalpha() else ""  # "Madeline spends$25*4=$100"
    blanked = (text[:start] + space + "___" + text[after.end():]).strip()
    # the result also stated before the calculation ("79 haircuts because ... = 79"): that is
    # the blank, and the calculation after it goes
    value = re.escape(format_number(step.value))
    stated = re.compile(rf"(?<![\d.,])[$€]?{value}(?![\d]|\.\d)")
    reason_dropped = _TRAILING_REASON.sub("", blanked)
    if reason_dropped != blanked and stated.search(reason_dropped):
        blanked = stated.sub("___", reason_dropped, count=1).strip()
    if blanked.count("___") != 1 or blanked.strip(" .") == "___" or blanked.count("(") != blanked.count(")"):
        return None
    return blanked.rstrip(" .,;:")


def say_value(value: Fraction, step: Step | None = None) -> str:
    """A value as the step says it: "$150", "30%", "13 hours", "160 pounds"."""
    text = format_number(value)
    if step is None:
        return text
    if step.unit == "%" and value == step.value:
        return f"{text}%"
    if re.search(rf"[$€]\s*{re.escape(text)}(?![\d])", step.description.replace(",", "")):
        return f"${text}"
    blank = cloze(step) or ""
    after = re.search(r"___\s+([A-Za-z]+)", blank)
    if after and value == step.value:
        word = after.group(1)
        plural = word.lower().endswith("s") and not word.lower().endswith("ss")  # "pounds", not "glass"
        if plural and word.lower() not in STOPWORDS and stem(word) in content_stems(step.description):
            return f"{text} {word}"
    return text


def _quoted(step: Step) -> str | None:
    sentence = cloze(step)
    return sentence[0].upper() + sentence[1:] if sentence else None


def focus_question(step: Step, variant: int = 0) -> str:
    """The focus rung: the step's sentence with its result blanked, asked about."""
    sentence = _quoted(step)
    if not sentence:
        return SAFE_FOCUS
    forms = (f'What number goes in the blank in "{sentence}"?',
             f'Look at this part again: what fills the blank in "{sentence}"?',
             f'Which number is missing from "{sentence}"?')
    return forms[variant % len(forms)]


def _written(expression: str) -> str:
    """A step's expression as a child reads it: "1 − (1 ÷ 3)", not "1 - ( 1 / 3 )"."""
    shown = " ".join(_SYMBOL.get(t, t) for t in expression.split())
    return shown.replace("( ", "(").replace(" )", ")")


def partial_hint(step: Step, variant: int = 0) -> str:
    """The partial rung: the operation and its operands, asked (on the last step the calculation
    is the answer's, so it is only ever inside the question)."""
    operators = [t for t in step.expression.split() if t in _OPERATION]
    operands = [format_number(v) for v in step.operands]
    shown = _written(step.expression)
    if len(operators) == 1 and len(operands) == 2:
        a, b = operands
        forms = (f"{_OPERATION[operators[0]].format(a=a, b=b)}: what is {shown}?",
                 f"What do you get when you work out {shown}?", f"What number is {shown}?")
        return forms[variant % len(forms)]
    forms = (f"What do you get when you work out {shown}?", f"What is {shown}?", f"What number is {shown}?")
    return forms[variant % len(forms)]


def smaller_step(step: Step) -> str:
    """The partial rung once more, as a smaller calculation inside the step (the learner has
    had its operation and operands and still asks): the first two operands of a longer
    calculation, or the operation by a simpler one."""
    operators = [t for t in step.expression.split() if t in _OPERATION]
    operands = step.operands
    a, b = (format_number(v) for v in operands[:2]) if len(operands) >= 2 else ("", "")
    if len(operands) > 2 and operators:
        return f"First work out {a} {_SYMBOL[operators[0]]} {b}: what is that?"
    if len(operands) != 2 or len(operators) != 1:
        return partial_hint(step, 1)
    operator, (x, y) = operators[0], operands
    if operator == "+":
        return f"Count on from {a}, adding {b}: what number do you reach?"
    if operator == "*":
        small = next((v for v in (x, y) if v.denominator == 1 and 2 <= v <= 4), None)
        if small is not None:
            other = format_number(y if small == x else x)
            return f"{a} × {b} means {other} added {format_number(small)} times: what is {' + '.join([other] * int(small))}?"
        return f"Think of {a} groups of {b}: how many is that in all, multiplied?"
    if operator == "-":
        return f"Start at {a} and take away {b}: how many are left?"
    return f"If you split {a} into groups of {b}, how many groups are there?"


def estimate(step: Step) -> str:
    """The partial rung a third way: whether the step's result is more or less than its first
    number (number sense, and a new question, when the learner keeps asking)."""
    shown = _written(step.expression)
    return f"Will {shown} be more or less than {format_number(step.operands[0])}?"


def bottom_out(step: Step) -> str:
    """The bottom-out rung: the step's calculation and its value."""
    shown = _written(step.expression)
    return f"Here it is: {shown} = {say_value(step.value, step)}."


def rung_text(level: int, step: Step, variant: int = 0) -> str:
    """The rung's content; a partial rung given again is said as a smaller calculation, then as
    an estimate, so no two turns in a row ask the same."""
    if level >= PARTIAL:
        return (partial_hint(step, variant // 3), smaller_step(step), estimate(step))[variant % 3]
    return focus_question(step, variant)


def _rung(level: int) -> str:
    return {FOCUS: FOCUS_RUNG, PARTIAL: PARTIAL_RUNG, BOTTOM_OUT: BOTTOM_OUT_RUNG}.get(level, "")


# Openings by intent, said another way on each repeat (`variant`).
_RIGHT = ("Yes, {v} is right.", "That's right: {v}.", "Yes! {v} is correct.")
_WRONG = ("{v} isn't right.", "Not quite: {v} isn't right.", "Hmm, {v} isn't right yet.")
_STUCK = ("That's OK, here's a hint.", "No problem, let's make it smaller.", "Let's take a smaller step.")
_DECLINE = ("I can't give you the answer, but here's a hint.", "I won't give it away, but let's get closer.",
            "Not the answer, but a smaller step.")
_CLARIFY = ("Let's look at this step.", "Let's take it one part at a time.", "OK, let's focus on this step.")


def _pick(forms: tuple[str, ...], variant: int, **values: str) -> str:
    return forms[variant % len(forms)].format(**values)


def spine_for(move: Move, steps: tuple[Step, ...], grade: Grade | None = None, *, variant: int = 0,
              problem_text: str = "", learner_text: str = "", last_right: bool = False,
              repeats: Callable[[str], bool] = lambda _: False) -> Spine:
    """The planner's turn for a move, as the spine a model's turn must also carry. `variant`
    says a rung again another way; a question `repeats` would call a repeat of one the tutor
    just asked is said another way too, when another way does not. `last_right`: the learner's
    previous message was right (so "why is that wrong?" is answered that it was not)."""
    for offset in range(3):
        spine = _spine(move, steps, grade, variant + offset, problem_text, learner_text, last_right)
        if not repeats(spine.text):
            return spine
    return _spine(move, steps, grade, variant, problem_text, learner_text, last_right)


def _spine(move: Move, steps: tuple[Step, ...], grade: Grade | None, variant: int, problem_text: str,
           learner_text: str, last_right: bool = False) -> Spine:
    step = steps[move.step] if move.step is not None and move.step < len(steps) else None
    value = grade.value if grade is not None else None
    said = say_value(value, steps[grade.step_index] if grade and grade.step_index is not None else step) \
        if value is not None else "that"
    intent = move.intent
    if intent == "celebrate_solution":
        return Spine(CONFIRM, value, questions=0, celebration=True, opening=f"Yes, {said} is the answer!",
                     content="You solved the whole problem. Well done.")
    if intent == "already_solved":
        return Spine(content="You've already solved this one. Want to try another problem?")
    if intent == "explain_your_step":
        return Spine(content="Walk me through your first step: what do you calculate, and why?")
    if intent == "confirm_arithmetic_next_step":
        # no verified solution: the arithmetic is right, which says nothing of the answer
        # ("Yes, 10 is right." to a wrong final answer misled MRBench's learners)
        expression = _written(grade.expression) if grade and grade.expression else ""
        return Spine(CONFIRM, value, opening=f"Your arithmetic is right: {expression} = {said}." if expression
                     else f"Your arithmetic is right: {said}.",
                     ask="What does that number tell you, and what comes next?")
    if step is None:  # a learner's own problem, no verified steps: their arithmetic is off
        return Spine(NAME_WRONG, value, opening="That calculation isn't right.",
                     ask="Can you check it again, one number at a time?")
    if intent == "praise_then_next_step":
        opening = _pick(_RIGHT, move.step or 0, v=said)
        if grade is not None and grade.wrong is not None:  # "3 x 50 = 150, so it costs 350"
            opening = f"Yes, {said} is right, but {format_number(grade.wrong)} isn't."
        elif grade is not None and grade.as_answer:  # "the answer is 10", a step's value
            opening = f"Yes, {said} is right for this step, but it isn't the final answer yet."
        return Spine(CONFIRM, value, question_step=step, opening=opening, content=focus_question(step, variant))
    if intent == "bottom_out":
        following = steps[move.step + 1] if move.step + 1 < len(steps) else None
        if following is None:
            return Spine(rung=BOTTOM_OUT_RUNG, step=step, questions=0,
                         content=bottom_out(step).rstrip(".") + ", and that answers the question.")
        return Spine(rung=BOTTOM_OUT_RUNG, step=step, question_step=following, content=bottom_out(step),
                     ask=focus_question(following))
    if intent == "ask_to_explain":
        return Spine(NAME_WRONG, value, question_step=step, about_value=True, ask=f"How did you get {said}?")
    if intent == "check_the_arithmetic":
        return Spine(NAME_WRONG, value, question_step=step, opening=f"Close, but {said} isn't quite right.",
                     content=partial_hint(step, variant + 2))
    content = rung_text(move.hint_level, step, variant)
    hint = dict(rung=_rung(move.hint_level), step=step, question_step=step, content=content)
    if intent == "confirm_then_focus":
        expression = _written(grade.expression) if grade and grade.expression else ""
        if expression and value is None:  # the step's calculation, not worked out yet ("is it 2 times 160")
            return Spine(CONFIRM, None, **(hint | {"content": f"What is {expression}?"}),
                         opening="Yes, that's the right calculation.")
        opening = (f"Yes, {expression} = {said} is right." if expression
                   else f"Yes, {said} is right, and we have that one already.")
        return Spine(CONFIRM, value, opening=opening, **hint)
    if intent == "hint_after_wrong_answer":
        return Spine(NAME_WRONG, value, opening=_pick(_WRONG, variant, v=said), **hint)
    if intent == "hint_when_stuck":
        return Spine(opening=_pick(_STUCK, variant), **hint)
    if intent == "decline_and_focus":
        return Spine(opening=_pick(_DECLINE, variant), declines=True, **hint)
    if intent == "answer_question_then_focus":
        answer = answer_from_problem(learner_text, problem_text)
        if not answer and _ABOUT_VERDICT.search(learner_text):  # "why is that wrong?"
            answer = ("It isn't wrong: that step is right, and this is the next one." if last_right
                      else "It doesn't fit the problem yet, so let's check it one step at a time.")
        return Spine(opening=answer, **hint)
    if intent == "redirect_to_problem":
        return Spine(opening="Let's get back to the problem.", **hint)
    if intent == "ask_to_clarify":
        return Spine(opening=_pick(_CLARIFY, variant), **hint)
    return Spine(**hint)  # hint_requested


def answer_from_problem(question: str, problem_text: str) -> str:
    """The problem's sentence that shares most words with the learner's question, quoted (the
    question is answered from the problem before the tutor asks its own); "" when none does."""
    asked = content_stems(question)
    best, overlap = "", 0
    for sentence in re.split(r"(?<=[.!?])\s+", problem_text.strip()):
        shared = len(asked & content_stems(sentence))
        if shared > overlap and not sentence.rstrip().endswith("?"):
            best, overlap = sentence.strip(), shared
    return f'The problem says: "{best}"' if best else ""


def phrase(move: Move, steps: tuple[Step, ...], grade: Grade | None = None, variant: int = 0) -> str:
    """The planner's text for a move."""
    return spine_for(move, steps, grade, variant=variant).text



def opening_line(problem_text: str) -> str:
    """How the tutor opens a session: the question the problem asks, quoted, and an invitation
    to begin (PEDAGOGY.md: the learner does the thinking from the first turn)."""
    asked = question_sentences(problem_text)
    if not asked:
        return "Let's work on this problem together. How would you begin?"
    return f'Let\'s work on this together. The problem asks: "{asked[-1].strip()}" How would you begin?'
