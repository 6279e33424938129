"""The planner's own phrasing of each move: the hint ladder's content, from verified steps.

The student model rephrases this; when its draft fails the guard, this text is used as is.
"""

from __future__ import annotations

import re

from tutor.domain.arithmetic import format_number
from tutor.domain.planner import BOTTOM_OUT, FOCUS, PARTIAL, PUMP, Move
from tutor.domain.steps import Step

_OPERATION = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}
_SYMBOL = {"+": "+", "-": "−", "*": "×", "/": "÷"}


_NUMBER_IN_TEXT = re.compile(r"[$€]?\d[\d,]*(?:\.\d+)?%?|[$€]?\.\d+%?")
_EQUALS = re.compile(r"=|\bequals\b")


def cloze(step: Step) -> str | None:
    """The step's sentence with its calculation and result blanked out:
    "He bought 40/5=8 boxes" -> "He bought ___ boxes"."""
    text = step.description
    equals = list(_EQUALS.finditer(text))
    if not equals:
        return None
    region_start = equals[-2].end() if len(equals) > 1 else 0
    before = list(_NUMBER_IN_TEXT.finditer(text, region_start, equals[-1].start()))
    after = _NUMBER_IN_TEXT.search(text, equals[-1].end())
    if not before or after is None:
        return None
    wanted = max(1, len(step.operands) - step.expression.count("/ 100 )"))
    start = before[-min(wanted, len(before))].start()
    blanked = (text[:start] + "___" + text[after.end():]).strip()
    # the result may also be stated elsewhere in the sentence ("79 haircuts because ... = 79")
    value = re.escape(format_number(step.value))
    blanked = re.sub(rf"(?<![\d.,]){value}(?![\d]|\.\d)", "___", blanked)
    return blanked if blanked.strip(" .") != "___" else None


def pump() -> str:
    return "What do we know from the problem so far, and what do we need to work out next?"


def focus_question(step: Step) -> str:
    sentence = cloze(step)
    if sentence:
        return f"Let's look at the next part: \"{sentence}\" What number goes in the blank?"
    return ("Which numbers from the problem do we need for the next step, and what should we do "
            "with them?")


def partial_hint(step: Step) -> str:
    operators = [t for t in step.expression.split() if t in _OPERATION]
    operands = [format_number(v) for v in step.operands]
    if len(operators) == 1 and len(operands) == 2:
        a, b = operands
        return (f"Try to {_OPERATION[operators[0]]} here: what is {a} {_SYMBOL[operators[0]]} {b}?")
    shown = " ".join(_SYMBOL.get(t, t) for t in step.expression.split())
    return f"What do you get when you work out {shown}?"


def bottom_out(step: Step, final: bool) -> str:
    shown = " ".join(_SYMBOL.get(t, t) for t in step.expression.split())
    value = f"{format_number(step.value)}{step.unit}"
    if final:
        return f"Here is the last step: {shown} = {value}, and that answers the question."
    return f"Here is this step: {shown} = {value}. Can you use it for the next step?"


def phrase(move: Move, steps: tuple[Step, ...], learner_value: str | None = None) -> str:
    """The planner's text for a move."""
    return joined(*phrase_parts(move, steps, learner_value))


def joined(opening: str, follow_up: str) -> str:
    """The planner's two parts as one turn."""
    return " ".join(part for part in (opening, follow_up) if part)


def phrase_parts(move: Move, steps: tuple[Step, ...], learner_value: str | None = None) -> tuple[str, str]:
    """The planner's text for a move in two parts: how it answers the learner's message, and
    what it asks or shows next (which can follow a model's sentences that answered already)."""
    step = steps[move.step] if move.step is not None and move.step < len(steps) else None
    intent = move.intent
    if intent == "celebrate_solution":
        return "Yes, that's it!", "You solved the whole problem. Well done."
    if intent == "already_solved":
        return "", "You've already solved this one. Want to try another problem?"
    if intent == "redirect_to_problem":
        return "Let's get back to the problem.", (focus_question(step) if step else
                                                 "What is the first thing you would work out?")
    if intent == "explain_your_step":
        return "", "Walk me through your first step: what do you calculate, and why?"
    if intent == "confirm_arithmetic_next_step":
        return "That calculation checks out.", "What does that number tell you, and what comes next?"
    if step is None:
        return "", "Can you check that calculation again, one number at a time?"
    if intent == "praise_then_next_step":
        return "Good, that's right.", focus_question(step)
    if intent == "check_the_arithmetic":
        return "You're on the right track.", "Can you check your calculation for this step again?"
    if intent == "ask_to_explain":
        shown = f" {learner_value}" if learner_value else " that"
        return "", f"How did you get{shown}? Walk me through your thinking."
    if intent == "ask_to_clarify":
        return "Can you say a bit more about how you'd work out this part?", focus_question(step)
    if intent == "answer_question_then_focus":
        return "Good question.", focus_question(step)
    opening = "I can't just give you the answer, but I can help you get there." if intent == "decline_and_focus" else ""
    return opening, rung_text(move.hint_level, step, final=move.step == len(steps) - 1)


def rung_text(level: int, step: Step, final: bool) -> str:
    if level >= BOTTOM_OUT:
        return bottom_out(step, final)
    if level == PARTIAL:
        return partial_hint(step)
    if level == FOCUS:
        return focus_question(step)
    if level == PUMP:
        return pump()
    return focus_question(step)

