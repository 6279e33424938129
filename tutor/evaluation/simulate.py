"""Simulated learner sessions through the real service: labels before real users arrive.

The evaluation's scripted learner (or a MathDial learner's own messages, replayed) works
training-split problems with the served student, turn by turn, exactly as a learner on the web
would (same prompts, checks, storage). Every failed
draft becomes a check-labelled preference pair (the text actually sent beside it). The
conversations are marked `simulated`, so a round can leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tutor.domain.dialogues import Dialogue
from tutor.domain.planner import Move, PlannerState
from tutor.domain.problems import Problem
from tutor.evaluation.learners import ReplayLearner, ScriptedLearner
from tutor.service import TutorService
from tutor.storage.store import Conversation

SIMULATED = "simulated"
SIMULATED_LEARNER = "simulated-learner"  # one account without a password: it cannot log in


@dataclass(frozen=True)
class StoredTurn:
    """The planner's judgement of a turn as stored with it (what the scripted learner reads)."""

    state: PlannerState
    move: Move


LEARNERS = {"scripted": ScriptedLearner, "replay": ReplayLearner}  # who plays the learner


def simulate(service: TutorService, pairs: list[tuple[Problem, Dialogue]], turns: int = 5, seed: int = 0,
             progress: Callable[[str], None] = lambda _: None, learner: str = "scripted") -> list[Conversation]:
    """One session per (problem, dialogue): the learner (scripted: opens with the dialogue's
    wrong answer; replay: says the dialogue's own learner messages in order) answers up to
    `turns` tutor turns, stopping once the problem is solved or a replayed learner has said all."""
    learner_account = service.local_learner(SIMULATED_LEARNER)
    sessions = []
    for number, (problem, dialogue) in enumerate(pairs, 1):
        conversation = service.start_session(learner_account, problem, origin=SIMULATED)
        player = LEARNERS[learner](problem, dialogue, seed)
        said = player.opening()
        for _ in range(turns):
            message = None
            for reply in service.reply(conversation, said):
                message = reply.message or message
            stored = message.planner_state
            turn = StoredTurn(PlannerState.from_json(stored["planner"]), Move.from_json(stored["move"]))
            if turn.state.solved or player.finished():
                break
            said = player.respond(message.content, turn)
        sessions.append(conversation)
        progress(f"simulated session {number}/{len(pairs)} (problem {problem.id})")
    return sessions
