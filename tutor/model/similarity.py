"""Sentence similarity by all-MiniLM-L6-v2: what "asks the same question" means in the app.

The repeat rule (`tutor.domain.repeats`) compares a new tutor question with the questions of the
last two tutor turns. Words alone miss a question asked again in other words ("How many pounds
does Hooper Bay have?" after "What is Hooper Bay's lobster in pounds?"); the cosine of two
sentence embeddings sees it. Each sentence is embedded once (a turn's earlier questions were
embedded when they were new).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from tutor.domain.repeats import RepeatRule
from tutor.model.retrieval import Embedder

# Two tutor questions at least this close (cosine) ask the same thing. Read on MathDial's human
# teachers' questions against those of their previous two turns (1,010 pairs, `python -m
# bench.repeats`): from 0.9 nearly every pair asks the same thing in other words ("Remind me what
# is the width of the room, in feet?" / "Now, can you tell me what the width of the room is, in
# feet?"); between 0.85 and 0.9 as many ask about another quantity ("How many biscuits did she
# bake in a day?" / "...how MANY MORE biscuits did she bake than butter?").
REPEAT_THRESHOLD = 0.9


class SentenceSimilarity:
    """Cosine similarities between sentences, with embeddings kept for the sentences seen last."""

    def __init__(self, embedder: Embedder, kept: int = 4096):
        self.embedder = embedder
        self.kept = kept
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, new: Sequence[str], earlier: Sequence[str]) -> np.ndarray:
        vectors = self.vectors([*new, *earlier])
        return vectors[:len(new)] @ vectors[len(new):].T

    def vectors(self, sentences: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(s for s in sentences if s not in self._vectors))
        if missing:
            embedded = np.asarray(self.embedder(missing), dtype=np.float32)
            with self._lock:
                for sentence, vector in zip(missing, embedded):
                    self._vectors[sentence] = vector
                while len(self._vectors) > self.kept:
                    self._vectors.popitem(last=False)
        with self._lock:
            return np.stack([self._get(sentence) for sentence in sentences])

    def _get(self, sentence: str) -> np.ndarray:
        vector = self._vectors.get(sentence)
        if vector is None:  # dropped from the cache by another thread meanwhile
            vector = np.asarray(self.embedder([sentence])[0], dtype=np.float32)
        return vector


def meaning_repeats(embedder: Embedder, threshold: float = REPEAT_THRESHOLD) -> RepeatRule:
    """The repeat rule the app and the evaluation use: questions compared by meaning."""
    return RepeatRule(SentenceSimilarity(embedder), threshold)
