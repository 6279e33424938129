"""What the student model is asked to do for one tutor turn: phrase the planned move."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tutor.domain.problems import Problem

# Small models lose the thread with long contexts, and on a CPU the prompt's prefill is most of
# a turn's cost: the planner keeps the state, so the model sees only the recent turns, each cut
# to its end.
HISTORY_TURNS = 4
TURN_CHARS = 300

SOCRATIC_SYSTEM_PROMPT = """\
You are a patient math tutor for a 7th-grade learner. Tutor Socratically:
- Never give the final answer and never solve the whole problem for the learner.
- Ask one short guiding question at a time about the next step.
- Keep each reply to one or two sentences. Write math in LaTeX between \\( and \\) when useful.

The problem the learner is working on:
{question}"""

MOVE_INSTRUCTION = """
Your next move is {move} ({intent}). Say this to the learner in your own words, without adding \
any other numbers: "{planned}\""""

EXEMPLARS = "\nHow human tutors phrased such a move:\n{lines}"


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" (the learner) or "assistant" (the tutor)
    content: str


def tutoring_messages(
    problem: Problem,
    history: Sequence[tuple[str, str]],
    *,
    move: str | None = None,
    intent: str = "",
    planned: str = "",
    exemplars: Sequence[str] = (),
) -> list[ChatMessage]:
    """Chat messages for the model: instructions, the planned move, then the recent dialogue.

    `history` is (role, text) pairs with roles "learner" and "tutor", oldest first, ending with
    the learner message the tutor answers.
    """
    system = SOCRATIC_SYSTEM_PROMPT.format(question=problem.question)
    if move:
        system += MOVE_INSTRUCTION.format(move=move, intent=intent.replace("_", " "), planned=planned)
    if exemplars:
        system += EXEMPLARS.format(lines="\n".join(f"- {line}" for line in exemplars))
    recent = list(history)[-HISTORY_TURNS:]
    return [ChatMessage("system", system)] + [
        ChatMessage("user" if role == "learner" else "assistant",
                    text if len(text) <= TURN_CHARS else "…" + text[-TURN_CHARS:])
        for role, text in recent
    ]
