"""The store: typed records in, typed records out; one SQLite connection per thread."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from tutor.domain.problems import Problem
from tutor.errors import NotFound
from tutor.storage.migrations import migrations

LEARNER = "learner"
THUMBS = "thumbs"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str


@dataclass(frozen=True)
class Conversation:
    id: int
    user_id: int
    problem: Problem
    status: str
    created: str
    updated: str
    policy: dict | None = None  # the reveal policy this conversation runs under


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: str  # "learner" or "tutor"
    content: str
    created: str
    model_version: str | None = None
    move: str | None = None
    hint_level: int | None = None
    planner_state: dict | None = None
    generation_params: dict | None = None
    latency_ms: int | None = None


@dataclass(frozen=True)
class Feedback:
    message_id: int
    user_id: int
    kind: str
    value: int
    comment: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    version: str
    base: str
    parent: str | None
    path: str
    manifest: dict
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingRun:
    id: int
    kind: str
    status: str
    config: dict
    step: int | None
    total_steps: int | None
    loss: float | None
    eta_s: int | None
    message: str | None
    version: str | None
    pid: int | None
    created: str
    updated: str


class Store:
    """All reads and writes of the product's database.

    `path=None` gives a private in-memory database (tests); it is shared between the threads
    of this Store like a file would be.
    """

    def __init__(self, path: Path | str | None):
        self._path = str(path) if path is not None else None
        self._memory_name = None if path is not None else f"tutor-{uuid.uuid4().hex}"
        self._local = threading.local()
        # An in-memory database lives as long as one connection to it stays open.
        self._keepalive = self.db
        migrations.apply(self.db)

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            if self._path is None:
                db = sqlite_utils.Database(memory_name=self._memory_name)
            else:
                db = sqlite_utils.Database(self._path)
                db.enable_wal()
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
            self._local.db = db
        return db

    # users

    def ensure_user(self, name: str, role: str = LEARNER) -> User:
        users = self.db["users"]
        # insert-or-ignore then read: two first visits at once must not collide on the unique name
        users.insert({"name": name, "role": role, "created": now()}, ignore=True)
        row = next(users.rows_where("name = ?", [name]))
        return User(id=row["id"], name=row["name"], role=row["role"])

    def user(self, user_id: int) -> User:
        row = self.db["users"].get(user_id)
        return User(id=row["id"], name=row["name"], role=row["role"])

    # problems and conversations

    def problem(self, problem_id: str) -> Problem | None:
        rows = list(self.db["problems"].rows_where("id = ?", [problem_id]))
        return _problem(rows[0]) if rows else None

    def save_problem(self, problem: Problem) -> None:
        stored = self.problem(problem.id)
        if stored is not None and not stored.solution and problem.solution:
            # a learner's problem first tutored without a solution now has a verified one
            self.db["problems"].update(problem.id, {"answer": problem.answer,
                                                    "solution": json.dumps(list(problem.solution))})
            return
        self.db["problems"].insert(
            {
                "id": problem.id,
                "question": problem.question,
                "answer": problem.answer,
                "solution": json.dumps(list(problem.solution)),
                "source": problem.source,
                "created": now(),
            },
            pk="id",
            ignore=True,  # ids are stable (bank) or content hashes (learner): first write wins
        )

    def start_conversation(self, user: User, problem: Problem, policy: dict | None = None) -> Conversation:
        with self.db.atomic():
            self.save_problem(problem)
            stamp = now()
            table = self.db["conversations"].insert(
                {
                    "user_id": user.id,
                    "problem_id": problem.id,
                    "status": "active",
                    "policy": _dump(policy),
                    "created": stamp,
                    "updated": stamp,
                }
            )
        return self.conversation(table.last_pk, user)

    def conversation(self, conversation_id: int, user: User) -> Conversation:
        """The conversation, if it is the user's own."""
        rows = self.db.query(
            """select c.*, p.question, p.answer, p.solution, p.source
            from conversations c join problems p on p.id = c.problem_id
            where c.id = ? and c.user_id = ?""",
            [conversation_id, user.id],
        )
        for row in rows:
            return _conversation(row)
        raise NotFound(f"No conversation {conversation_id} for {user.name}.")

    def conversations(self, user: User, limit: int = 50) -> list[Conversation]:
        """The user's conversations, most recently active first."""
        rows = self.db.query(
            """select c.*, p.question, p.answer, p.solution, p.source
            from conversations c join problems p on p.id = c.problem_id
            where c.user_id = ? order by c.updated desc, c.id desc limit ?""",
            [user.id, limit],
        )
        return [_conversation(row) for row in rows]

    # messages

    def append_message(
        self,
        conversation: Conversation,
        role: str,
        content: str,
        *,
        model_version: str | None = None,
        move: str | None = None,
        hint_level: int | None = None,
        planner_state: dict | None = None,
        generation_params: dict | None = None,
        latency_ms: int | None = None,
    ) -> Message:
        stamp = now()
        record = {
            "conversation_id": conversation.id,
            "role": role,
            "content": content,
            "model_version": model_version,
            "move": move,
            "hint_level": hint_level,
            "planner_state": _dump(planner_state),
            "generation_params": _dump(generation_params),
            "latency_ms": latency_ms,
            "created": stamp,
        }
        with self.db.atomic():
            message_id = self.db["messages"].insert(record).last_pk
            self.db["conversations"].update(conversation.id, {"updated": stamp})
        return _message({**record, "id": message_id})

    def messages(self, conversation: Conversation) -> list[Message]:
        rows = self.db["messages"].rows_where(
            "conversation_id = ?", [conversation.id], order_by="id"
        )
        return [_message(row) for row in rows]

    # mastery

    def mastery(self, user: User) -> dict[str, tuple[float, int]]:
        """skill -> (P(known), observations) for the user."""
        rows = self.db["mastery"].rows_where("user_id = ?", [user.id], order_by="skill")
        return {row["skill"]: (row["p_known"], row["observations"]) for row in rows}

    def set_mastery(self, user: User, skill: str, p_known: float, observations: int) -> None:
        self.db["mastery"].upsert(
            {"user_id": user.id, "skill": skill, "p_known": p_known,
             "observations": observations, "updated": now()},
            pk=("user_id", "skill"),
        )

    def set_status(self, conversation: Conversation, status: str) -> None:
        self.db["conversations"].update(conversation.id, {"status": status})

    # feedback

    def set_feedback(
        self, message: Message, user: User, kind: str, value: int, comment: str | None = None
    ) -> Feedback:
        self.db.execute(
            """insert into feedback (message_id, user_id, kind, value, comment, created)
            values (?, ?, ?, ?, ?, ?)
            on conflict (message_id, user_id, kind)
            do update set value = excluded.value, comment = excluded.comment,
                created = excluded.created""",
            [message.id, user.id, kind, value, comment, now()],
        )
        self.db.conn.commit()
        return Feedback(message.id, user.id, kind, value, comment)

    def feedback(self, message: Message) -> list[Feedback]:
        rows = self.db["feedback"].rows_where("message_id = ?", [message.id], order_by="id")
        return [
            Feedback(row["message_id"], row["user_id"], row["kind"], row["value"], row["comment"])
            for row in rows
        ]


    # model registry and training runs

    def register_model(self, version: str, manifest: dict, path: str) -> None:
        self.db["model_versions"].upsert(
            {"version": version, "base": manifest.get("base", ""), "parent": manifest.get("parent"),
             "path": path, "manifest": _dump(manifest), "created": manifest.get("created") or now()},
            pk="version",
        )

    def model_versions(self) -> list[ModelVersion]:
        aliases: dict[str, list[str]] = {}
        for row in self.db["model_aliases"].rows:
            aliases.setdefault(row["version"], []).append(row["alias"])
        return [
            ModelVersion(row["version"], row["base"], row["parent"], row["path"], _load(row["manifest"]),
                         tuple(sorted(aliases.get(row["version"], ()))))
            for row in self.db["model_versions"].rows_where(order_by="created, version")
        ]

    def set_alias(self, alias: str, version: str) -> None:
        self.db["model_aliases"].upsert({"alias": alias, "version": version, "updated": now()}, pk="alias")

    def alias(self, alias: str) -> str | None:
        rows = list(self.db["model_aliases"].rows_where("alias = ?", [alias]))
        return rows[0]["version"] if rows else None

    def create_training_run(self, kind: str, config: dict) -> TrainingRun:
        stamp = now()
        run_id = self.db["training_runs"].insert(
            {"kind": kind, "status": "queued", "config": _dump(config), "created": stamp, "updated": stamp}
        ).last_pk
        return self.training_run(run_id)

    def update_training_run(self, run_id: int, **fields) -> None:
        self.db["training_runs"].update(run_id, fields | {"updated": now()})

    def training_run(self, run_id: int) -> TrainingRun:
        try:
            row = self.db["training_runs"].get(run_id)
        except sqlite_utils.db.NotFoundError:
            raise NotFound(f"No training run {run_id}.") from None
        return TrainingRun(**(row | {"config": _load(row["config"])}))

    def training_runs(self, limit: int = 20) -> list[TrainingRun]:
        rows = self.db["training_runs"].rows_where(order_by="id desc", limit=limit)
        return [TrainingRun(**(row | {"config": _load(row["config"])})) for row in rows]


def _dump(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(value: str | None) -> dict | None:
    return None if value is None else json.loads(value)


def _problem(row: dict) -> Problem:
    return Problem(
        id=row.get("problem_id", row.get("id")),
        question=row["question"],
        answer=row["answer"] or "",
        solution=tuple(json.loads(row["solution"] or "[]")),
        source=row["source"],
    )


def _conversation(row: dict) -> Conversation:
    problem = _problem(row)
    return Conversation(
        id=row["id"],
        user_id=row["user_id"],
        problem=problem,
        status=row["status"],
        created=row["created"],
        updated=row["updated"],
        policy=_load(row["policy"]),
    )


def _message(row: dict) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=row["role"],
        content=row["content"],
        created=row["created"],
        model_version=row["model_version"],
        move=row["move"],
        hint_level=row["hint_level"],
        planner_state=_load(row["planner_state"]),
        generation_params=_load(row["generation_params"]),
        latency_ms=row["latency_ms"],
    )
