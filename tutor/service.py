"""TutorService: the one place a tutoring turn is orchestrated (UI and CLI both call it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from tutor.domain.learner_input import MAX_PROBLEM_CHARS, clean_text
from tutor.domain.problems import Problem, ProblemBank
from tutor.domain.prompting import tutoring_messages
from tutor.errors import InvalidInput, NotFound
from tutor.model.backend import Backend, GenerationParams
from tutor.storage.store import THUMBS, Conversation, Message, Store, User

LEARNER_ROLE, TUTOR_ROLE = "learner", "tutor"
THUMBS_UP, THUMBS_DOWN = 1, -1
EMPTY_REPLY_FALLBACK = "Can you tell me how you would start?"
FALLBACK_VERSION = "fallback"


@dataclass(frozen=True)
class TutorReply:
    """A tutor turn as it streams: `text` so far; `message` once it is stored."""

    text: str
    message: Message | None = None


class TutorService:
    def __init__(
        self,
        store: Store,
        bank: ProblemBank,
        student: Backend,
        params: GenerationParams = GenerationParams(),
    ):
        self.store = store
        self.bank = bank
        self.student = student
        self.params = params

    # sessions

    def local_learner(self) -> User:
        """Until accounts land, everything belongs to one local learner."""
        return self.store.ensure_user("local-learner")

    def start_bank_session(self, user: User, problem_id: str) -> Conversation:
        return self.store.start_conversation(user, self.bank.get(problem_id))

    def start_own_session(self, user: User, problem_text: str) -> Conversation:
        text = clean_text(problem_text, max_chars=MAX_PROBLEM_CHARS, what="problem")
        return self.store.start_conversation(user, Problem.from_learner_text(text))

    def conversation(self, user: User, conversation_id: int) -> Conversation:
        return self.store.conversation(conversation_id, user)

    def sessions(self, user: User) -> list[Conversation]:
        return self.store.conversations(user)

    def transcript(self, conversation: Conversation) -> list[Message]:
        return self.store.messages(conversation)

    # the turn

    def reply(self, conversation: Conversation, text: str) -> Iterator[TutorReply]:
        """Store the learner's message, then stream and store the tutor's answer to it.

        Bad input raises InvalidInput before anything is stored.
        """
        text = clean_text(text)
        self.store.append_message(conversation, LEARNER_ROLE, text)
        history = [(m.role, m.content) for m in self.store.messages(conversation)]
        messages = tutoring_messages(conversation.problem, history)

        started = time.perf_counter()
        reply = ""
        for piece in self.student.generate(messages, self.params):
            reply += piece
            yield TutorReply(reply)
        reply, version = reply.strip(), self.student.version
        if not reply:  # the model said nothing: ask a neutral question, and say who wrote it
            reply, version = EMPTY_REPLY_FALLBACK, FALLBACK_VERSION
        message = self.store.append_message(
            conversation,
            TUTOR_ROLE,
            reply,
            model_version=version,
            generation_params=self.params.to_json(),
            latency_ms=round((time.perf_counter() - started) * 1000),
        )
        yield TutorReply(reply, message)

    # feedback

    def rate(self, user: User, conversation: Conversation, message_id: int, value: int) -> None:
        """A learner's 👍 (+1) or 👎 (-1) on one tutor turn of their own conversation."""
        if value not in (THUMBS_UP, THUMBS_DOWN):
            raise InvalidInput("A rating is 👍 or 👎.")
        for message in self.store.messages(conversation):
            if message.id == message_id and message.role == TUTOR_ROLE:
                self.store.set_feedback(message, user, THUMBS, value)
                return
        raise NotFound("Only the tutor's messages in this conversation can be rated.")
