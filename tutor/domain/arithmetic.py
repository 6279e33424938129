"""Numbers and arithmetic in free text: find them, normalise them, evaluate them with SymPy.

Shared by the step parser (worked solutions), grading (learner answers) and the guard (tutor
drafts), so all three read "$3,650", "1/2", "five hundred" and "3 x 5" the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import sympy

# Words that stand for numbers. Scale words multiply what precedes them ("five hundred").
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORD = "|".join(sorted([*_UNITS, *_SCALES], key=len, reverse=True))
# A run of number words, allowing hyphens, "and", and punctuation between them
# ("five. hundred" still reads as 500: drafts that split an answer over sentences).
_WORD_RUN = re.compile(
    rf"\b(?:{_NUMBER_WORD})(?:(?:[\s\-.,;:!?]+(?:and[\s]+)?)(?:{_NUMBER_WORD}))*\b", re.I
)
_DIGITS = r"\d[\d,]*(?:\.\d+)?|\.\d+"
_NUMBER = re.compile(rf"(?<![\w.])(?:{_DIGITS})(?![\d])")

_N = r"([\d.,]+)"
# Operator words, rewritten to symbols before tokenising.
_WORD_OPERATORS = [
    (rf"\bmultiply\s+{_N}\s+(?:by|and|with)\s+{_N}", r"\1 * \2"),
    (rf"\bdivide\s+{_N}\s+by\s+{_N}", r"\1 / \2"),
    (rf"\b(?:add|sum\s+of)\s+{_N}\s+(?:and|to|plus)\s+{_N}", r"\1 + \2"),
    (rf"\bsubtract\s+{_N}\s+from\s+{_N}", r"\2 - \1"),
    (rf"\b(?:product)\s+of\s+{_N}\s+and\s+{_N}", r"\1 * \2"),
    (r"\bmultiplied\s+by\b", "*"), (r"\btimes\s+(?=[$€]?\s*[\d.(])", "* "), (r"\bdivided\s+(?:by|into)\b", "/"),
    (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\bequals\b", "="), (r"\bis\s+equal\s+to\b", "="),
    (r"\btwice\s+(?=\d)", "2 * "), (r"\bdouble\s+(?=\d)", "2 * "), (r"\btriple\s+(?=\d)", "3 * "),
    (r"\bhalf\s+of\s+(?=\d)", "1/2 * "),
    # "It's 250. Double that." refers back to the number before it
    (r"\b(?:double|twice)\s+(?:that|it|this)\b", "* 2"), (r"\btriple\s+(?:that|it|this)\b", "* 3"),
    (r"\bhalf\s+(?:of\s+)?(?:that|it|this)\b", "/ 2"),
    # "100%/80%" is (100/100)/(80/100): the parentheses keep the share together
    (r"(\d[\d.]*)\s*(?:%|percent\b)\s*of\b", r"(\1/100) *"),
    (r"(\d[\d.]*)\s*(?:%|percent\b)", r"(\1/100)"),
    # "$6/card" and "2 GB/minute" are units, not divisions
    (r"(?<=[\w.])\s*/\s*(?=[A-Za-z])", " per "),
    # "36 x 2", "14 hours x 24 weeks", "35€ X 3": a standalone x before a number multiplies
    (r"(?<=\d)\s*[x×]\s*(?=[\d.(])", " * "), (r"(?<=\s)[xX×](?=\s+[$€]?\s*[\d.])", "*"),
    (r"\(\s*[A-Za-z][A-Za-z\s]*\)", " "),  # "93 (average) * 5 (tests)": labels, not groups
    (r"(?<=[\d)])\s*\(", " * ("), (r"\)\s*(?=[\d(])", ") * "),  # 2(40+9), (1/4)(8)
    (r"÷", "/"), (r"[−–]", "-"), (r"\^", "**"), (r"=\s*=", "="),
    (r"(?<=[A-Za-z])-(?=[A-Za-z])", " "),  # "hand-crank" is a word, not a subtraction
]
_TOKEN = re.compile(rf"(?P<number>{_DIGITS})|(?P<op>\*\*|[-+*/=()])")
MAX_TOKENS = 64  # nobody writes longer arithmetic in a chat turn; bounds SymPy's work


@dataclass(frozen=True)
class Token:
    kind: str  # "number" or "op"
    text: str


def parse_number(text: str) -> Fraction:
    """ "3,650" -> 3650, "0.1" -> 1/10, ".55" -> 11/20 (exact)."""
    return Fraction(text.replace(",", ""))


def words_to_digits(text: str) -> str:
    """Replace runs of number words by digits: "five hundred and two" -> "502"."""
    return _WORD_RUN.sub(lambda match: str(_words_value(match.group(0))), text)


def _words_value(run: str) -> int:
    total, current = 0, 0
    for word in re.findall(rf"{_NUMBER_WORD}", run.lower()):
        if word in _UNITS:
            current += _UNITS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def normalise(text: str, *, number_words: bool = True) -> str:
    """Text with operator words as symbols, currency removed and (by default) number words as
    digits. Worked solutions keep number words: there "five floors" names things, it does not
    take part in the calculation."""
    if number_words:
        text = words_to_digits(text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # thousands separators
    text = re.sub(r"[$€£]", " ", text)
    for pattern, symbol in _WORD_OPERATORS:
        text = re.sub(pattern, symbol, text, flags=re.I)
    return text


def numbers_in(text: str) -> list[Fraction]:
    """Every number written in the text, in digits or words (not ordinals like 11th)."""
    text = words_to_digits(text).replace("$", " ")
    return [
        parse_number(match.group(0))
        for match in _NUMBER.finditer(text)
        if not re.match(r"(?:st|nd|rd|th)\b", text[match.end():match.end() + 2])
    ]


def tokens(text: str, *, number_words: bool = True) -> list[Token]:
    """Numbers and operators of the normalised text, in order; words are dropped."""
    found = [
        Token("number" if match.lastgroup == "number" else "op", match.group(0).replace(",", ""))
        for match in _TOKEN.finditer(normalise(text, number_words=number_words))
    ]
    return found[-MAX_TOKENS:]


def evaluate(expression: str) -> Fraction | None:
    """The exact value of a numbers-and-operators expression, or None if it is not one.

    Tokens are separated by spaces, so "150 2" (two numbers, words dropped between them) is
    not read as 1502.
    """
    return _evaluate(" ".join(expression.split()))


@lru_cache(maxsize=4096)
def _evaluate(expression: str) -> Fraction | None:
    if not expression or not re.fullmatch(r"[\d.+\-*/() ]+", expression) or "**" in expression:
        return None  # only plain arithmetic reaches SymPy: no names, no powers
    try:
        value = sympy.sympify(expression, rational=True)
    except (sympy.SympifyError, SyntaxError, TypeError, ZeroDivisionError):
        return None
    if not isinstance(value, sympy.Basic) or not value.is_Rational:
        return None
    return Fraction(int(value.p), int(value.q))


def expressions_in(token_list: list[Token]) -> list[tuple[str, Fraction]]:
    """Every contiguous run of tokens that is a valid arithmetic expression, with its value."""
    found = []
    for start in range(len(token_list)):
        if token_list[start].kind != "number" and token_list[start].text not in "(-":
            continue
        for end in range(start + 1, min(len(token_list), start + 16) + 1):
            if token_list[end - 1].kind != "number" and token_list[end - 1].text != ")":
                continue
            expression = join(token_list[start:end])
            value = evaluate(expression)
            if value is not None:
                found.append((expression, value))
    return found


def whole_expressions(token_list: list[Token]) -> list[tuple[str, Fraction, list[Fraction]]]:
    """The longest runs of tokens that are calculations (an operator between numbers), left to
    right, each with its value and operands: "is it 60+4+9" is 60 + 4 + 9 = 73, not 60 + 4."""
    found, start = [], 0
    while start < len(token_list):
        best = None
        if token_list[start].kind == "number" or token_list[start].text in "(-":
            for end in range(min(len(token_list), start + 16), start + 1, -1):
                run = token_list[start:end]
                if run[-1].kind != "number" and run[-1].text != ")":
                    continue
                if not any(t.kind == "op" and t.text not in "()=" for t in run[1:]):
                    continue
                value = evaluate(join(run))
                if value is not None:
                    best = (end, join(run), value, [Fraction(t.text) for t in run if t.kind == "number"])
                    break
        if best is None:
            start += 1
            continue
        end, expression, value, operands = best
        found.append((expression, value, operands))
        start = end
    return found


def stated_calculations(token_list: list[Token]) -> list[tuple[str, Fraction, Fraction]]:
    """Each calculation set equal to a number ("60 x 4 = 240"): (expression, its value, the value
    stated after '=')."""
    found = []
    for index, token in enumerate(token_list):
        if token.text != "=" or index + 1 >= len(token_list) or token_list[index + 1].kind != "number":
            continue
        before = [t for t in token_list[:index]]
        for begin in range(max(0, index - 16), index):
            run = before[begin:]
            if not any(t.kind == "op" and t.text not in "()=" for t in run) or "=" in {t.text for t in run}:
                continue
            value = evaluate(join(run))
            if value is not None:
                found.append((join(run), value, Fraction(token_list[index + 1].text)))
                break
    return found


_NUM = r"[$€]?\d[\d,]*(?:\.\d+)?"
# "3 * 15 = 40", "960 minus 40 is 960": a calculation of plain numbers (no names: "3x/2 = 150" is
# algebra) set equal to a number
_STATED = re.compile(rf"(?<![\w.])((?:{_NUM}\s*[-+*/]\s*)+{_NUM})\s*(?:=|\bis\b)\s*({_NUM})(?![\d.]*\w)"
                     rf"(?!\s*[-+*/]\s*[$€]?\d)")


def false_calculations(text: str) -> list[str]:
    """Calculations the text states wrongly ("80 - 2 = 60"); a stated value rounded to its own
    decimals ("100 / 3 = 33.33") is right."""
    wrong = []
    for match in _STATED.finditer(normalise(text, number_words=False)):
        left, right = match.group(1), match.group(2)
        value = evaluate(join(tokens(left, number_words=False)))
        stated = parse_number(right.lstrip("$€"))
        if value is not None and not close_enough(value, stated, decimals_of(right.replace(",", ""))):
            wrong.append(f"{''.join(left.split())} = {right}")
    return wrong


def join(token_list: list[Token]) -> str:
    return " ".join(token.text for token in token_list)


def close_enough(value: Fraction, target: Fraction, decimals: int | None = None) -> bool:
    """Equal, or equal after rounding to `decimals` places (for stated values like 33.33)."""
    if value == target:
        return True
    if decimals is None:
        return False
    return abs(value - target) <= Fraction(1, 2 * 10**decimals) + Fraction(1, 10**9)


def decimals_of(number_text: str) -> int:
    return len(number_text.split(".", 1)[1]) if "." in number_text else 0


def format_number(value: Fraction) -> str:
    """150 -> "150", 5/2 -> "2.5", 2/3 -> "2/3"."""
    if value.denominator == 1:
        return str(value.numerator)
    as_decimal = value.numerator / value.denominator
    if Fraction(str(round(as_decimal, 4))) == value:
        return f"{as_decimal:g}"
    return f"{value.numerator}/{value.denominator}"
