"""Surface features of a turn the judge's heads read beside the encoder's: whether it states
the problem's answer, how many numbers and questions it has, its length, whether it repeats the
learner's numbers, praises, names a mistake, or asks. Cheap, and what a small encoder reading a
truncated conversation misses (revealing the answer hinges on one number)."""

from __future__ import annotations

import re

from tutor.judge.data import Exchange

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PRAISE = re.compile(r"\b(?:great|correct|well done|good job|excellent|perfect|right)\b", re.I)
_MISTAKE = re.compile(r"\b(?:not quite|mistake|incorrect|error|wrong|not correct|check|re-?examine|look again|"
                      r"take another look)\b", re.I)
_ASKS = re.compile(r"\b(?:what|how|why|can you|could you)\b", re.I)
FEATURES = ("states the answer", "numbers", "questions", "words", "repeats the learner's numbers", "praises",
            "names a mistake", "asks")


def hand_features(exchange: Exchange, turn: str) -> list[float]:
    numbers = _NUMBER.findall(turn.replace(",", ""))
    learner_numbers = set(_NUMBER.findall(exchange.learner.replace(",", "")))
    return [float(bool(exchange.answer) and exchange.answer in numbers), len(numbers) / 5, float(turn.count("?")),
            len(turn.split()) / 50, float(any(n in learner_numbers for n in numbers)),
            float(bool(_PRAISE.search(turn))), float(bool(_MISTAKE.search(turn))), float(bool(_ASKS.search(turn)))]
