"""What the student model is asked to do for one tutor turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from tutor.domain.problems import Problem

# Small models lose the thread with long contexts and CPU prefill is slow: keep recent turns.
HISTORY_TURNS = 12

SOCRATIC_SYSTEM_PROMPT = """\
You are a patient math tutor for a 7th-grade learner. Tutor Socratically:
- Never give the final answer and never solve the whole problem for the learner.
- Ask one short guiding question at a time about the next step.
- If the learner makes a mistake, ask them to explain their reasoning or check that step.
- Praise correct steps briefly, then move on to the next one.
- Keep each reply to one to three sentences. Write math in LaTeX between \\( and \\) when useful.

The problem the learner is working on:
{question}"""


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" (the learner) or "assistant" (the tutor)
    content: str


def tutoring_messages(problem: Problem, history: Sequence[tuple[str, str]]) -> list[ChatMessage]:
    """Chat messages for the model: the Socratic instructions, then the recent dialogue.

    `history` is (role, text) pairs with roles "learner" and "tutor", oldest first, ending with
    the learner message the tutor answers.
    """
    system = ChatMessage("system", SOCRATIC_SYSTEM_PROMPT.format(question=problem.question))
    recent = list(history)[-HISTORY_TURNS:]
    return [system] + [
        ChatMessage("user" if role == "learner" else "assistant", text) for role, text in recent
    ]
