"""Bayesian Knowledge Tracing: P(the learner knows a skill), updated after each graded step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BKTParameters:
    prior: float = 0.2  # P(known) before any evidence
    learn: float = 0.15  # P(learns it at an opportunity)
    guess: float = 0.2  # P(right without knowing)
    slip: float = 0.1  # P(wrong despite knowing)


DEFAULT_BKT = BKTParameters()


def update(p_known: float, correct: bool, parameters: BKTParameters = DEFAULT_BKT) -> float:
    """Posterior after observing one step (Bayes), then the chance of learning at this step."""
    guess, slip = parameters.guess, parameters.slip
    if correct:
        evidence = p_known * (1 - slip) + (1 - p_known) * guess
        posterior = p_known * (1 - slip) / evidence
    else:
        evidence = p_known * slip + (1 - p_known) * (1 - guess)
        posterior = p_known * slip / evidence
    return posterior + (1 - posterior) * parameters.learn
