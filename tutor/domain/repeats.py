"""No repeats in new words: a tutor question whose meaning one of the last two tutor turns asked.

Asking a stuck learner the same thing again moves them nowhere ("How much did she spend?" after
"How much money did she spend?"). Meaning is compared by a similarity between sentences: by
default the words (a question whose every word and number the earlier one had), in the app and
the evaluation all-MiniLM-L6-v2's cosine (`tutor.model.similarity`), with a threshold
calibrated on the human teachers' consecutive questions. A question is fine again when the
learner has just tried to answer it (a value, right or wrong): it was their turn to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tutor.domain.arithmetic import numbers_in
from tutor.domain.words import content_stems, sentences

# (new sentences, earlier sentences) -> a similarity per pair, rows by new sentence
Similarity = Callable[[Sequence[str], Sequence[str]], Sequence[Sequence[float]]]

REPEATS = "asks again what a recent turn asked"


def question_sentences(text: str) -> list[str]:
    done, rest = sentences(text)
    return [part for part in done + ([rest] if rest else []) if part.rstrip().endswith("?")]


def word_overlap(new: Sequence[str], earlier: Sequence[str]) -> list[list[float]]:
    """1.0 where every word of the new sentence is in the earlier one, else the share that is."""
    rows = []
    for sentence in new:
        words = content_stems(sentence)
        rows.append([len(words & content_stems(old)) / len(words) if words else 0.0 for old in earlier])
    return rows


@dataclass(frozen=True)
class RepeatRule:
    similarity: Similarity = word_overlap
    threshold: float = 1.0

    def repeated(self, text: str, recent: Sequence[str]) -> list[str]:
        """The questions of `text` that one of the `recent` tutor turns asked already: as close
        as the threshold, and naming no number the earlier question did not."""
        new = question_sentences(text)
        earlier = [question for turn in recent for question in question_sentences(turn)]
        if not new or not earlier:
            return []
        scores = self.similarity(new, earlier)
        return [question for question, row in zip(new, scores)
                if any(score >= self.threshold and set(numbers_in(question)) <= set(numbers_in(old))
                       for score, old in zip(row, earlier))]


WORDS = RepeatRule()  # the default: the same words
