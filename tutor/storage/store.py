"""The store: typed records in, typed records out; one SQLite connection per thread."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from tutor.domain.problems import Problem
from tutor.errors import InvalidInput, NotFound
from tutor.storage.migrations import migrations

log = logging.getLogger(__name__)

LEARNER = "learner"
THUMBS = "thumbs"


NOCASE = {"users": " collate nocase"}  # user names are unique whatever their case
# left out of an export: secrets, and the addresses others tried to log in to the account from
SECRET_COLUMNS = {"users": {"password_hash"}, "sessions": {"token_hash"}, "login_failures": {"address"}}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str  # learner | teacher | admin
    disabled: bool = False
    must_change_password: bool = False  # logged in with a one-time password


@dataclass(frozen=True)
class SchoolClass:
    id: int
    name: str
    teacher_id: int | None
    policy: dict | None = None  # the teacher's reveal policy; None: the deployment's default


@dataclass(frozen=True)
class Conversation:
    id: int
    user_id: int
    problem: Problem
    status: str
    created: str
    updated: str
    policy: dict | None = None  # the reveal policy this conversation runs under
    origin: str = "live"  # live | simulated (a scripted learner, for labels before real users)


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


RUBRIC = ("correct", "socratic", "no_leak", "encouraging")  # PEDAGOGY.md's rubric, in order


@dataclass(frozen=True)
class Review:
    """A teacher's review of one tutor turn: rubric marks (True, False, None not judged), a
    corrected move tag, a rewrite of the turn."""

    id: int
    message_id: int
    teacher_id: int
    marks: dict[str, bool | None]
    move: str | None = None
    rewrite: str | None = None
    updated: str = ""

    @property
    def rated(self) -> bool:
        return any(mark is not None for mark in self.marks.values())

    @property
    def good(self) -> bool | None:
        """Every judged rubric item holds (None: nothing judged)."""
        judged = [mark for mark in self.marks.values() if mark is not None]
        return all(judged) if judged else None


@dataclass(frozen=True)
class LabelledTurn:
    """A tutor turn with everything said about it: whose conversation, live or simulated, the
    learner's thumbs, the teachers' reviews."""

    message: Message
    owner_id: int
    origin: str
    feedback: list[Feedback]
    reviews: list[Review]


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
    losses: list | None = None  # [step, loss] at every logged step
    cancel_requested: bool = False
    gate: dict | None = None  # the evaluation gate's verdict on the run's candidate

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


class Store:
    """All reads and writes of the product's database.

    `path=None` gives a private throwaway database (tests) in a temporary folder, removed with
    the Store. It is a file like the real one, not SQLite's shared-cache memory: there a reader
    in one thread makes another thread's write fail at once ("table is locked") instead of
    waiting, which the web tests' concurrent requests kept running into.
    """

    def __init__(self, path: Path | str | None):
        self._throwaway = path is None
        if path is None:
            folder = tempfile.mkdtemp(prefix="tutor-db-")
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
            path = Path(folder) / "tutor.db"
        self._path = str(path)
        self._local = threading.local()
        migrations.apply(self.db)

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(self._path)
            db.enable_wal()
            # an acknowledged message survives a crash of the process and of the machine (a
            # throwaway database needs no flush to disk)
            db.execute(f"PRAGMA synchronous = {'OFF' if self._throwaway else 'FULL'}")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
            # deleted rows are overwritten with zeros, not left readable in free pages
            db.execute("PRAGMA secure_delete = ON")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction, begun IMMEDIATE (nested: a savepoint). sqlite-utils' atomic()
        begins DEFERRED, and in WAL mode a transaction that reads first (sqlite-utils reads the
        table's columns before an insert) and then writes fails at once with "database is
        locked", busy timeout or not, when another connection committed in between: 16
        concurrent learners hit it (bench/load.py). IMMEDIATE takes the write lock first, so
        writers wait their turn instead."""
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():
                yield db
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        db.conn.execute("COMMIT")

    def _row(self, table: str, key, what: str) -> dict:
        try:
            return self.db[table].get(key)
        except sqlite_utils.db.NotFoundError:
            raise NotFound(f"No {what} {key}.") from None

    def _named(self, table: str, name: str, what: str) -> dict:
        """The row of a table whose `name` column is unique (users: whatever the case, classes).
        The exact name first: a database from before names were unique whatever their case may
        hold both "Bob" and "bob"."""
        for row in self.db.query(f"select * from [{table}] where name = ?{NOCASE.get(table, '')} "
                                 "order by name = ? desc, id limit 1", [name, name]):
            return row
        raise NotFound(f"No {what} named {name!r}.")

    def _insert_named(self, table: str, what: str, record: dict) -> int:
        """Insert a row with a unique `name`; a taken name is bad input, said plainly."""
        if self.db[table].count_where(f"name = ?{NOCASE.get(table, '')}", [record["name"]]):
            raise InvalidInput(f"There is already a {what} named {record['name']!r}.")
        try:
            return self.db[table].insert(record).last_pk
        except sqlite3.IntegrityError:
            raise InvalidInput(f"There is already a {what} named {record['name']!r}.") from None

    # users

    def ensure_user(self, name: str, role: str = LEARNER) -> User:
        users = self.db["users"]
        # insert-or-ignore then read: two first visits at once must not collide on the unique name
        users.insert({"name": name, "role": role, "created": now()}, ignore=True)
        return self.user_named(name)

    def create_user(self, name: str, role: str, password_hash: str | None,
                    must_change_password: bool = False) -> User:
        return self.user(self._insert_named("users", "user", {
            "name": name, "role": role, "password_hash": password_hash,
            "must_change_password": int(must_change_password), "created": now()}))

    def user(self, user_id: int) -> User:
        return _user(self._row("users", user_id, "user"))

    def user_named(self, name: str) -> User:
        return _user(self._named("users", name, "user"))

    def password_hash(self, user: User) -> str | None:
        return self.db["users"].get(user.id)["password_hash"]

    def update_user(self, user: User, **fields) -> User:
        """Change role, disabled, password_hash or must_change_password."""
        self.db["users"].update(user.id, {k: int(v) if isinstance(v, bool) else v
                                          for k, v in fields.items()})
        return self.user(user.id)

    def users(self) -> list[User]:
        return [_user(row) for row in self.db["users"].rows_where(order_by="name")]

    def count_users(self, role: str) -> int:
        return self.db["users"].count_where("role = ?", [role])

    # classes

    def create_class(self, name: str, teacher: User | None) -> SchoolClass:
        return self.school_class(self._insert_named("classes", "class", {
            "name": name, "teacher_id": teacher.id if teacher else None, "created": now()}))

    def school_class(self, class_id: int) -> SchoolClass:
        return _class(self._row("classes", class_id, "class"))

    def class_named(self, name: str) -> SchoolClass:
        return _class(self._named("classes", name, "class"))

    def set_class_teacher(self, school_class: SchoolClass, teacher: User | None) -> None:
        self.db["classes"].update(school_class.id, {"teacher_id": teacher.id if teacher else None})

    def rename_class(self, school_class: SchoolClass, name: str) -> None:
        """A taken name is bad input, said plainly."""
        taken = InvalidInput(f"There is already a class named {name!r}.")
        if any(row["id"] != school_class.id for row in self.db["classes"].rows_where("name = ?", [name])):
            raise taken
        try:
            self.db["classes"].update(school_class.id, {"name": name})
        except sqlite3.IntegrityError:  # named so by another request meanwhile
            raise taken from None

    def delete_class(self, school_class: SchoolClass) -> None:
        """The class and who is in it; its learners, their sessions and their teacher's account stay."""
        with self.transaction():
            self.db.execute("delete from enrolments where class_id = ?", [school_class.id])
            self.db.execute("delete from classes where id = ?", [school_class.id])

    def set_class_policy(self, school_class: SchoolClass, policy: dict | None) -> None:
        self.db["classes"].update(school_class.id, {"policy": _dump(policy)})

    def learner_class_policy(self, learner: User) -> dict | None:
        """The reveal policy of the first of the learner's classes that sets one."""
        rows = self.db.query("""select c.policy from classes c join enrolments e on e.class_id = c.id
            where e.user_id = ? and c.policy is not null order by c.name limit 1""", [learner.id])
        for row in rows:
            return _load(row["policy"])
        return None

    def classes(self, teacher: User | None = None) -> list[SchoolClass]:
        """Every class, or those `teacher` teaches."""
        where, args = ("teacher_id = ?", [teacher.id]) if teacher else (None, None)
        return [_class(row) for row in self.db["classes"].rows_where(where, args, order_by="name")]

    def enrol(self, school_class: SchoolClass, learner: User) -> None:
        self.db["enrolments"].insert({"class_id": school_class.id, "user_id": learner.id,
                                      "created": now()}, ignore=True)

    def unenrol(self, school_class: SchoolClass, learner: User) -> bool:
        """Take a learner out of a class (their sessions stay theirs); False if they were not in it."""
        return self.db.execute("delete from enrolments where class_id = ? and user_id = ?",
                               [school_class.id, learner.id]).rowcount > 0

    def members(self, school_class: SchoolClass) -> list[User]:
        rows = self.db.query(
            """select u.* from users u join enrolments e on e.user_id = u.id
            where e.class_id = ? order by u.name""", [school_class.id])
        return [_user(row) for row in rows]

    def teaches(self, teacher: User, learner_id: int) -> bool:
        rows = self.db.query(
            """select 1 from enrolments e join classes c on c.id = e.class_id
            where c.teacher_id = ? and e.user_id = ? limit 1""", [teacher.id, learner_id])
        return any(True for _ in rows)

    # web sessions and failed logins

    def add_session(self, token_hash: str, user: User, expires: str) -> None:
        stamp = now()
        self.db["sessions"].insert({"token_hash": token_hash, "user_id": user.id, "created": stamp,
                                    "last_seen": stamp, "expires": expires})

    def session(self, token_hash: str) -> dict | None:
        for row in self.db["sessions"].rows_where("token_hash = ?", [token_hash]):
            return row
        return None

    def touch_session(self, token_hash: str, expires: str) -> None:
        self.db["sessions"].update(token_hash, {"last_seen": now(), "expires": expires})

    def end_sessions(self, token_hash: str | None = None, user: User | None = None,
                     expired_before: str | None = None, keep: str | None = None) -> None:
        """End one session (log out), all of a user's (disabled, new password) but the one
        `keep` names, or those that expired before a moment."""
        if expired_before is not None:
            self.db["sessions"].delete_where("expires < ?", [expired_before])
        if token_hash is not None:
            self.db["sessions"].delete_where("token_hash = ?", [token_hash])
        if user is not None:
            self.db["sessions"].delete_where("user_id = ? and token_hash is not ?", [user.id, keep])

    def add_login_failure(self, name: str, address: str | None, at: str | None = None) -> None:
        self.db["login_failures"].insert({"name": name, "address": address, "at": at or now()})

    def login_failures(self, since: str, *, name: str | None = None, address: str | None = None,
                       any_address: bool = False) -> tuple[int, str | None]:
        """(how many failed logins since a moment, for `name` if given, from `address` unless
        `any_address`; the last one's time)."""
        where, values = ["at > ?"], [since]
        if name is not None:
            where, values = where + ["name = ?"], values + [name]
        if not any_address:
            where, values = where + ["address is ?"], values + [address]
        row = next(iter(self.db.query("select count(*) as n, max(at) as last from login_failures where "
                                      + " and ".join(where), values)))
        return row["n"], row["last"]

    def record_login(self, user: User, address: str | None) -> None:
        self.db["known_logins"].upsert({"user_id": user.id, "address": address or "", "last": now()},
                                       pk=("user_id", "address"))  # "": no address known

    def last_logins(self) -> dict[int, str]:
        """Each user's last web login, by user id (none yet: absent)."""
        return {row["user_id"]: row["last"] for row in
                self.db.query("select user_id, max(last) as last from known_logins group by user_id")}

    def logged_in_from(self, name: str, address: str | None) -> bool:
        """Whether the user of this name has logged in from this address before."""
        rows = self.db.query("""select 1 from known_logins k join users u on u.id = k.user_id
            where u.name = ? collate nocase and k.address = ? limit 1""", [name, address or ""])
        return next(iter(rows), None) is not None

    def clear_login_failures(self, name: str, addresses: tuple[str | None, ...] | None = None) -> None:
        """Forget the failed logins for a name: from some addresses (its owner logged in from
        there), or from everywhere (None: a new password)."""
        if addresses is None:
            self.db["login_failures"].delete_where("name = ?", [name])
        for address in addresses or ():
            self.db["login_failures"].delete_where("name = ? and address is ?", [name, address])

    # audit log and settings

    def audit(self, actor: User | None, action: str, target: str | None = None,
              detail: dict | None = None, by: str = "console") -> None:
        """Record an action; `actor` None is the server's console (`python -m tutor ...`), or
        whoever `by` says (the login form)."""
        self.db["audit_log"].insert({"actor_id": actor.id if actor else None,
                                     "actor": actor.name if actor else by, "action": action,
                                     "target": target, "detail": _dump(detail), "at": now()})

    def audit_log(self, limit: int | None = 100, words: str | None = None, since: str | None = None) -> list[dict]:
        """The newest entries; `words`: in who, the action or the target (any case); `since`: a day."""
        where, args = ["1"], []
        if words:
            where.append("instr(lower(actor || ' ' || action || ' ' || coalesce(target, '')), lower(?)) > 0")
            args.append(words)
        if since:
            where.append("at >= ?")
            args.append(since)
        rows = self.db["audit_log"].rows_where(" and ".join(where), args, order_by="id desc", limit=limit)
        return [row | {"detail": _load(row["detail"])} for row in rows]

    def setting(self, key: str, default: str | None = None) -> str | None:
        for row in self.db["settings"].rows_where("key = ?", [key]):
            return row["value"]
        return default

    def set_setting(self, key: str, value: str) -> None:
        self.db["settings"].upsert({"key": key, "value": value, "updated": now()}, pk="key")

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

    def start_conversation(self, user: User, problem: Problem, policy: dict | None = None,
                           origin: str = "live") -> Conversation:
        with self.transaction():
            self.save_problem(problem)
            stamp = now()
            table = self.db["conversations"].insert(
                {
                    "user_id": user.id,
                    "problem_id": problem.id,
                    "status": "active",
                    "policy": _dump(policy),
                    "origin": origin,
                    "created": stamp,
                    "updated": stamp,
                }
            )
        return self.conversation(table.last_pk, user)

    def conversation(self, conversation_id: int, user: User | None) -> Conversation:
        """The conversation, if it is `user`'s own (None: whoever's it is; the caller checked)."""
        owner_clause, args = ("and c.user_id = ?", [user.id]) if user is not None else ("", [])
        rows = self.db.query(
            f"""select c.*, p.question, p.answer, p.solution, p.source
            from conversations c join problems p on p.id = c.problem_id
            where c.id = ? {owner_clause}""",
            [conversation_id, *args],
        )
        for row in rows:
            return _conversation(row)
        raise NotFound(f"No conversation {conversation_id}" + (f" for {user.name}." if user else "."))

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
        with self.transaction():
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

    def class_mastery(self, school_class: SchoolClass) -> list[dict]:
        """(learner, skill, p_known) for every learner of a class with a mastery estimate."""
        return list(self.db.query(
            """select u.name as learner, m.skill, m.p_known from mastery m
            join enrolments e on e.user_id = m.user_id join users u on u.id = m.user_id
            where e.class_id = ? order by u.name, m.skill""", [school_class.id]))

    def class_activity(self, school_class: SchoolClass, days: int = 30) -> list[dict]:
        """Sessions started and solved per day by a class's learners, the last `days` days."""
        return list(self.db.query(
            """select substr(c.created, 1, 10) as day, count(*) as started,
                sum(c.status = 'solved') as solved
            from conversations c join enrolments e on e.user_id = c.user_id
            where e.class_id = ? and c.created >= date('now', ?) and c.origin = 'live'
            group by day order by day""", [school_class.id, f"-{int(days)} days"]))

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

    def thumbs(self, conversation: Conversation) -> dict[int, int]:
        """The conversation's learner's 👍 (+1) / 👎 (-1), by the id of the tutor turn rated."""
        rows = self.db.execute(
            """select f.message_id, f.value from feedback f join messages m on m.id = f.message_id
            where m.conversation_id = ? and f.kind = ? and f.user_id = ?""",
            [conversation.id, THUMBS, conversation.user_id])
        return dict(rows.fetchall())

    def feedback(self, message: Message) -> list[Feedback]:
        rows = self.db["feedback"].rows_where("message_id = ?", [message.id], order_by="id")
        return [
            Feedback(row["message_id"], row["user_id"], row["kind"], row["value"], row["comment"])
            for row in rows
        ]

    # teachers' reviews

    def save_review(self, message: Message, teacher: User, marks: dict[str, bool | None],
                    move: str | None, rewrite: str | None) -> Review:
        stamp = now()
        record = {"message_id": message.id, "teacher_id": teacher.id, "move": move, "rewrite": rewrite,
                  "updated": stamp, **{k: None if marks.get(k) is None else int(marks[k]) for k in RUBRIC}}
        self.db.execute(
            f"""insert into reviews (message_id, teacher_id, {", ".join(RUBRIC)}, move, rewrite, created, updated)
            values (:message_id, :teacher_id, {", ".join(":" + k for k in RUBRIC)}, :move, :rewrite,
                    :updated, :updated)
            on conflict (message_id, teacher_id) do update set
            {", ".join(f"{k} = excluded.{k}" for k in (*RUBRIC, "move", "rewrite", "updated"))}""",
            record)
        self.db.conn.commit()
        return self.review(message.id, teacher)

    def review(self, message_id: int, teacher: User) -> Review | None:
        for row in self.db["reviews"].rows_where("message_id = ? and teacher_id = ?", [message_id, teacher.id]):
            return _review(row)
        return None

    def reviews(self) -> list[Review]:
        return [_review(row) for row in self.db["reviews"].rows_where(order_by="id")]

    def labelled_turns(self) -> list[LabelledTurn]:
        """Every tutor turn that stored its prompt, with its conversation (owner, origin), the
        learner's thumbs and teachers' reviews on it: what feedback datasets are built from."""
        rows = self.db.query(
            """select m.*, c.user_id, c.origin from messages m join conversations c on c.id = m.conversation_id
            where m.role = 'tutor' and json_extract(m.planner_state, '$.prompt') is not null order by m.id""")
        turns = [(_message(row), row["user_id"], row["origin"]) for row in rows]
        feedback: dict[int, list[Feedback]] = {}
        for row in self.db["feedback"].rows_where("kind = ?", [THUMBS], order_by="id"):
            feedback.setdefault(row["message_id"], []).append(
                Feedback(row["message_id"], row["user_id"], row["kind"], row["value"], row["comment"]))
        reviews: dict[int, list[Review]] = {}
        for review in self.reviews():
            reviews.setdefault(review.message_id, []).append(review)
        return [LabelledTurn(message, user_id, origin, feedback.get(message.id, []), reviews.get(message.id, []))
                for message, user_id, origin in turns]

    def labels_since(self, since: str | None) -> int:
        """Learners' thumbs and teachers' reviews given after `since` (None: ever)."""
        clause, args = ("where updated > ?", [since]) if since else ("", [])
        thumbs = self.db.execute(f"select count(*) from feedback {clause.replace('updated', 'created')}",
                                 args).fetchone()[0]
        return thumbs + self.db.execute(f"select count(*) from reviews {clause}", args).fetchone()[0]

    def message(self, message_id: int) -> Message:
        return _message(self._row("messages", message_id, "message"))

    def tutor_turns(self, class_id: int, *, learner_id: int | None = None, problem_id: str | None = None,
                    since: str | None = None, model_version: str | None = None, thumbs_down: bool = False,
                    draft_failed: bool = False, unreviewed: bool = False, text: str | None = None,
                    limit: int = 200) -> list[dict]:
        """Tutor turns in the conversations of a class's learners, newest first, filtered; `text`:
        words in the turn or in the learner's message it answered (any case)."""
        where, args = ["e.class_id = ?", "m.role = 'tutor'"], [class_id]
        for clause, value in (("c.user_id = ?", learner_id), ("c.problem_id = ?", problem_id),
                              ("m.created >= ?", since), ("m.model_version = ?", model_version)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if thumbs_down:
            where.append("thumbs = -1")
        if draft_failed:
            where.append("json_extract(m.planner_state, '$.guard.passed') = 0")
        if unreviewed:
            where.append("reviewed = 0")
        if text:
            where.append("""(instr(lower(m.content), lower(?)) > 0 or instr(lower(coalesce(
                (select l.content from messages l where l.conversation_id = m.conversation_id and l.id < m.id
                 and l.role = 'learner' order by l.id desc limit 1), '')), lower(?)) > 0)""")
            args += [text, text]
        rows = self.db.query(
            f"""select m.id, m.conversation_id, m.content, m.model_version, m.move, m.hint_level,
                m.created, c.user_id, u.name as learner, c.problem_id,
                json_extract(m.planner_state, '$.guard.passed') as draft_passed,
                (select min(f.value) from feedback f where f.message_id = m.id and f.kind = '{THUMBS}') as thumbs,
                (select group_concat(f.comment, ' / ') from feedback f
                 where f.message_id = m.id and f.kind = '{THUMBS}' and f.comment is not null) as comment,
                exists(select 1 from reviews r where r.message_id = m.id) as reviewed
            from messages m join conversations c on c.id = m.conversation_id
            join enrolments e on e.user_id = c.user_id join users u on u.id = c.user_id
            where {" and ".join(where)} order by m.id desc limit ?""", [*args, limit])
        return list(rows)

    # limits, privacy, retention, backup

    def learner_requests_since(self, user: User, since: str) -> int:
        """What the learner asked the tutor for since `since`: messages and hints, and turns they
        asked to hear another way (which store no message of theirs)."""
        rows = self.db.query(
            """select count(*) as n from messages m join conversations c on c.id = m.conversation_id
            where c.user_id = ? and m.created > ? and (m.role = 'learner'
                or json_extract(m.planner_state, '$.another_way_of') is not null)""", [user.id, since])
        return next(iter(rows))["n"]

    def export_user(self, user: User) -> dict:
        """Everything stored about one user, as plain JSON-able data: the conversations as they
        read, and every row `delete_user` removes, by table."""
        conversations = []
        for conversation in self.conversations(user, limit=-1):
            messages = [{**vars(m), "feedback": [vars(f) for f in self.feedback(m)]}
                        for m in self.messages(conversation)]
            conversations.append({
                "id": conversation.id, "problem_id": conversation.problem.id,
                "problem": conversation.problem.question, "status": conversation.status,
                "created": conversation.created, "updated": conversation.updated,
                "messages": messages,
            })
        row = self.db["users"].get(user.id)
        rows = {table: [{k: v for k, v in r.items() if k not in SECRET_COLUMNS.get(table, ())} for r in
                        self.db.query(f"select rowid as _rowid, * from {table} where {where}", values)]
                for table, where, values in self._rows_about(user)}
        return {
            "user": {k: row[k] for k in ("id", "name", "role", "created", "disabled")},
            "classes": [c.name for c in self.classes_of(user)],
            "conversations": conversations,
            "mastery": [{"skill": s, "p_known": p, "observations": n}
                        for s, (p, n) in self.mastery(user).items()],
            "rows": rows,
        }

    def classes_of(self, user: User) -> list[SchoolClass]:
        rows = self.db.query("""select c.* from classes c join enrolments e on e.class_id = c.id
            where e.user_id = ? order by c.name""", [user.id])
        return [_class(row) for row in rows]

    def delete_user(self, user: User) -> None:
        """Remove the user and every row about them, in one transaction; then (once no
        transaction is open) the write-ahead log is folded into the file, whose freed pages
        secure_delete has zeroed."""
        with self.transaction():
            self.db.execute("update classes set teacher_id = null where teacher_id = ?", [user.id])
            # the audit trail keeps what was done, not who the deleted user was
            self.db.execute("update audit_log set actor = ?, actor_id = null where actor_id = ?",
                            [f"deleted user {user.id}", user.id])
            for table, where, values in self._rows_about(user):
                self.db.execute(f"delete from {table} where {where}", values)
        self.checkpoint()

    def _rows_about(self, user: User) -> list[tuple[str, str, list]]:
        """Every row about one user, as (table, where, values), in an order they can be deleted
        in: what export_user writes out and delete_user removes, from one list."""
        mine = "select id from conversations where user_id = ?"
        their_messages = f"select id from messages where conversation_id in ({mine})"
        # problems they typed in themselves, unless someone else is working on them too
        problems = [row[0] for row in self.db.execute(
            """select id from problems where source = 'learner'
            and id in (select problem_id from conversations where user_id = ?)
            and not exists (select 1 from conversations c where c.problem_id = problems.id and c.user_id != ?)""",
            [user.id, user.id]).fetchall()]
        return [
            ("feedback", f"user_id = ? or message_id in ({their_messages})", [user.id, user.id]),
            # teachers' reviews and rewrites of the tutor's turns to them, and their own reviews
            ("reviews", f"teacher_id = ? or message_id in ({their_messages})", [user.id, user.id]),
            ("messages", f"conversation_id in ({mine})", [user.id]),
            ("conversations", "user_id = ?", [user.id]),
            ("problems", f"id in ({', '.join('?' * len(problems))})", problems),
            ("mastery", "user_id = ?", [user.id]),
            ("enrolments", "user_id = ?", [user.id]),
            ("sessions", "user_id = ?", [user.id]),
            ("known_logins", "user_id = ?", [user.id]),
            ("login_failures", "lower(name) = ?", [user.name.lower()]),
            ("users", "id = ?", [user.id]),
        ]

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file and empty it: text deleted a moment
        ago is not left readable in the log. Inside a transaction it waits for its end: the
        caller that opened it calls again after."""
        if self.db.conn.in_transaction:
            return
        for _ in range(50):  # a reader in another thread holds the log for a moment
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.1)
        log.warning("the write-ahead log stayed in use; deleted rows leave it at the next checkpoint")

    def purge_transcripts(self, before: str) -> int:
        """Delete the messages (and their feedback) of conversations idle since `before`; the
        conversations stay, marked purged, so mastery and counts still add up."""
        with self.transaction():
            run = self.db.execute
            old = "select id from conversations where updated < ? and status != 'purged'"
            count = run(f"select count(*) from conversations where id in ({old})", [before]).fetchone()[0]
            for table in ("feedback", "reviews"):
                run(f"""delete from {table} where message_id in
                    (select id from messages where conversation_id in ({old}))""", [before])
            run(f"delete from messages where conversation_id in ({old})", [before])
            run(f"update conversations set status = 'purged' where id in ({old})", [before])
        self.checkpoint()
        return count

    def backup(self, destination: Path | str) -> None:
        """A consistent copy of the database, safe while the app is writing (VACUUM INTO)."""
        destination = Path(destination)
        if destination.exists():
            raise InvalidInput(f"{destination} already exists; choose a new file.")
        destination.parent.mkdir(parents=True, exist_ok=True)
        self.db.execute("VACUUM INTO ?", [str(destination)])

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

    def set_alias(self, alias: str, version: str, actor: str = "console", reason: str = "promote") -> None:
        """Point the alias at a version; `reason` (promote, rollback) is kept with the change."""
        with self.transaction():
            previous = self.alias(alias)
            self.db["model_aliases"].upsert({"alias": alias, "version": version, "updated": now()}, pk="alias")
            self.db["alias_changes"].insert({"alias": alias, "version": version, "previous": previous,
                                             "reason": reason, "actor": actor, "at": now()})

    def alias_changes(self, alias: str, limit: int = 20) -> list[dict]:
        """The alias's changes, newest first: version, previous, actor, at."""
        return list(self.db["alias_changes"].rows_where("alias = ?", [alias], order_by="id desc", limit=limit))

    def alias(self, alias: str) -> str | None:
        rows = list(self.db["model_aliases"].rows_where("alias = ?", [alias]))
        return rows[0]["version"] if rows else None

    def create_training_run(self, kind: str, config: dict, exclusive: bool = False) -> TrainingRun:
        """A queued run; `exclusive`: only if no other run is queued or running (one statement,
        so two starts at once cannot both pass), else InvalidInput."""
        stamp = now()
        cursor = self.db.execute(
            f"""insert into training_runs (kind, status, config, created, updated)
            select ?, 'queued', ?, ?, ? where {'not exists (select 1 from training_runs where status in '
                                                "('queued', 'running'))" if exclusive else '1'}""",
            [kind, _dump(config), stamp, stamp])
        self.db.conn.commit()
        if cursor.rowcount == 0:
            active = self.active_training_run()
            raise InvalidInput(f"Round {active.id if active else '?'} is still under way: one round at a time.")
        return self.training_run(cursor.lastrowid)

    def update_training_run(self, run_id: int, **fields) -> None:
        """Change a run's row; `losses` and `gate` are JSON, `loss` at a `step` is also appended
        to the run's loss history."""
        if "losses" in fields or "gate" in fields:
            fields = fields | {k: _dump(fields[k]) if k == "gate" else json.dumps(fields[k])
                               for k in ("losses", "gate") if k in fields}
        with self.transaction():
            if fields.get("step") and fields.get("loss") is not None:
                row = self.db["training_runs"].get(run_id)
                history = json.loads(row["losses"] or "[]") + [[fields["step"], fields["loss"]]]
                fields = fields | {"losses": json.dumps(history)}
            self.db["training_runs"].update(run_id, fields | {"updated": now()})

    def training_run(self, run_id: int) -> TrainingRun:
        return _training_run(self._row("training_runs", run_id, "training run"))

    def training_runs(self, limit: int = 20) -> list[TrainingRun]:
        rows = self.db["training_runs"].rows_where(order_by="id desc", limit=limit)
        return [_training_run(row) for row in rows]

    def active_training_run(self) -> TrainingRun | None:
        for row in self.db["training_runs"].rows_where("status in ('queued', 'running')",
                                                       order_by="id desc", limit=1):
            return _training_run(row)
        return None


def _review(row: dict) -> Review:
    return Review(id=row["id"], message_id=row["message_id"], teacher_id=row["teacher_id"],
                  marks={k: None if row[k] is None else bool(row[k]) for k in RUBRIC},
                  move=row["move"], rewrite=row["rewrite"], updated=row["updated"])


def _training_run(row: dict) -> TrainingRun:
    return TrainingRun(**(row | {"config": _load(row["config"]), "losses": json.loads(row["losses"] or "[]"),
                                 "cancel_requested": bool(row["cancel_requested"]),
                                 "gate": _load(row["gate"])}))


def _dump(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(value: str | None) -> dict | None:
    return None if value is None else json.loads(value)


def _user(row: dict) -> User:
    return User(id=row["id"], name=row["name"], role=row["role"], disabled=bool(row["disabled"]),
                must_change_password=bool(row["must_change_password"]))


def _class(row: dict) -> SchoolClass:
    return SchoolClass(id=row["id"], name=row["name"], teacher_id=row["teacher_id"],
                       policy=_load(row.get("policy")))


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
        origin=row.get("origin") or "live",
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
