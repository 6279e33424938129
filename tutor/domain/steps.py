"""Worked solutions as verified steps: parse GSM8K-style lines and check each with SymPy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from tutor.domain.arithmetic import Token, close_enough, decimals_of, evaluate, join, tokens
from tutor.domain.problems import Problem

# An unknown in an equation: "80+x", "4x=80", "2/3 * x"
_VARIABLE = re.compile(r"(?:\b|(?<=\d))[xyn]\s*[=+\-*/)]|[=+\-*/(]\s*[xyn]\b")


@dataclass(frozen=True)
class Step:
    description: str  # the solution line, as written
    expression: str  # the calculation, e.g. "3 * 50"
    value: Fraction
    skill: str
    decimals: int = 0  # decimal places of the value as written (33.33 -> 2): rounding tolerance
    unit: str = ""  # "%" when the value is a percentage: value 30 means 30% (0.3)

    @property
    def amount(self) -> Fraction:
        """The value as a plain number (30% -> 3/10)."""
        return self.value / 100 if self.unit == "%" else self.value

    @property
    def operands(self) -> list[Fraction]:
        return [Fraction(t) for t in self.expression.split() if t[0].isdigit() or t[0] == "."]


@dataclass(frozen=True)
class WorkedSolution:
    steps: tuple[Step, ...]
    notes: tuple[str, ...]  # lines without a calculation (setting up, restating)
    errors: tuple[str, ...]  # why the solution does not verify; empty when it does

    @property
    def verified(self) -> bool:
        return not self.errors and bool(self.steps)


class UnverifiedLine(ValueError):
    pass


def parse_step(line: str) -> Step | None:
    """The line's calculation as a Step; None for a line with no calculation.

    Raises UnverifiedLine when the line states a calculation that SymPy does not confirm.
    """
    found = tokens(line, number_words=False)
    equals = [index for index, token in enumerate(found) if token.text == "="]
    if not equals:
        return None
    last = equals[-1]
    stated = _stated_values(found[last + 1:])
    if not stated:
        raise UnverifiedLine(f"no value after the last '=': {line!r}")
    # In a chain "4/5 * 1/4 = 1/5 = 20%" the calculation is the first side that reaches the
    # value; within a side it is the longest run of tokens just before '=' that does (words
    # were dropped, so "3 other people ... 3 bids * $50" leaves "3 3 * 50").
    bounds = [-1, *equals]
    for side_start, side_end in zip(bounds, bounds[1:]):
        left = found[side_start + 1:side_end]
        for begin in range(len(left)):
            candidate = left[begin:]
            if not any(t.kind == "op" for t in candidate):
                continue
            computed = evaluate(join(candidate))
            for value_text, value in stated:
                decimals = decimals_of(value_text)
                if computed is not None and close_enough(computed, value, decimals):
                    expression = join(candidate)
                    skill = skill_of(candidate, value)
                    if value_text.endswith("/ 100 )"):  # stated as a percentage
                        return Step(line, expression, value * 100, skill, decimals, unit="%")
                    return Step(line, expression, value, skill, decimals)
    left = found[equals[-2] + 1 if len(equals) > 1 else 0:last]
    if _VARIABLE.search(line.lower()):
        return None  # an equation with an unknown sets up algebra; it is not a calculation step
    shown = join(left) or "nothing"
    raise UnverifiedLine(f"{shown} does not equal {stated[0][0]}: {line!r}")


def _stated_values(after: list[Token]) -> list[tuple[str, Fraction]]:
    """What '=' states: its first number, and the longest leading expression when that differs
    ("= 2/3" states 2/3; "= 30%" states 30, or 30/100 when the left side is a share)."""
    leading = after[1:] if after and after[0].text == "(" else after
    if not leading or leading[0].kind != "number":
        return []
    values = [(leading[0].text, Fraction(leading[0].text))]
    for end in range(min(len(after), 5), 1, -1):
        value = evaluate(join(after[:end]))
        if value is not None and value != values[0][1]:
            values.append((join(after[:end]), value))
            break
    return values


def skill_of(expression: list[Token], value: Fraction) -> str:
    """The skill a step practises, for mastery tracking: by its numbers and operations."""
    text = join(expression)
    operators = {t.text for t in expression if t.kind == "op" and t.text in "+-*/"}
    if "/ 100 )" in text:
        return "percentages"
    if re.search(r"\d+ / \d+ \)|\( \d+ / \d+", text) or ("/" in operators and value.denominator != 1):
        return "fractions"
    if any("." in t.text for t in expression if t.kind == "number"):
        return "decimals"
    if len(operators) > 1 or "(" in text:
        return "multi-step arithmetic"
    return {"+": "addition", "-": "subtraction", "*": "multiplication", "/": "division"}.get(
        operators.pop() if operators else "", "arithmetic"
    )


@lru_cache(maxsize=1024)
def worked_solution(problem: Problem) -> WorkedSolution:
    """Parse and verify a problem's solution lines; the last step must reach the final answer."""
    steps, notes, errors = [], [], []
    for line in problem.solution:
        try:
            step = parse_step(line)
        except UnverifiedLine as error:
            errors.append(str(error))
            continue
        if step is None:
            notes.append(line)
        else:
            steps.append(step)
    answer = final_answer_value(problem)
    if answer is None:
        errors.append(f"the final answer {problem.answer!r} is not a number")
    elif not steps:
        errors.append("no calculation steps")
    elif not close_enough(steps[-1].value, answer, steps[-1].decimals):
        errors.append(
            f"the last step gives {steps[-1].expression} = {steps[-1].value}, "
            f"not the final answer {problem.answer}"
        )
    return WorkedSolution(tuple(steps), tuple(notes), tuple(errors))


def final_answer_value(problem: Problem) -> Fraction | None:
    return evaluate(join(tokens(problem.answer))) if problem.answer else None
