"""Accounts: passwords, web sessions, roles and who may read what, and the audit trail.

The web pages and the `users` command both call this service; the store only keeps rows. Every
check that decides access lives here, so no page or API call can skip it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tutor.domain.dialogues import MOVES
from tutor.domain.learner_input import clean_text
from tutor.domain.policy import RevealPolicy
from tutor.errors import AccessDenied, InvalidInput, LoginRefused, LoginThrottled, NotFound
from tutor.storage.store import NOCASE, RUBRIC, Conversation, Message, Review, SchoolClass, Store, User

LEARNER, TEACHER, ADMIN = "learner", "teacher", "admin"
ROLES = (LEARNER, TEACHER, ADMIN)
STAFF = (TEACHER, ADMIN)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,39}")
MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS = 8, 200
# argon2id's RFC 9106 low-memory profile takes 64 MiB a hash: 16 learners logging in at once
# took 1 GiB (bench/load.py); more logins than this wait their turn
HASHES_AT_ONCE = 2
RETENTION_DAYS = "retention_days"  # settings key: raw transcripts older than this are purged
WRONG_CREDENTIALS = "Wrong name or password."
LOGIN_FORM = "login form"  # who the audit log says tried a failed login (nobody known yet)
EXPIRED = "Your session has expired. Please log in again."


@dataclass(frozen=True)
class AccountLimits:
    """Failed logins slow the next try; they never lock anyone out for good. Within
    `failure_window_hours`:
    - after `name_failures` failures for one name from one address, the next try of that name
      from there waits a minute, doubling with each further failure up to `lockout_minutes`;
    - after `address_failures` from one address (any names), the same for every name tried
      from there (a password sprayed over many names);
    - after `everywhere_failures` for one name from any addresses, a try of it waits a minute
      (guesses spread over many addresses).
    The last two spare a name at an address it has logged in from before: an attacker elsewhere,
    or beside its owner behind one school NAT, cannot keep the owner out."""
    session_hours: float = 8.0  # a web session ends after this long without a request
    name_failures: int = 5
    address_failures: int = 20
    everywhere_failures: int = 20
    lockout_minutes: int = 15
    failure_window_hours: float = 24.0


class AccountService:
    def __init__(
        self,
        store: Store,
        limits: AccountLimits = AccountLimits(),
        hasher: PasswordHasher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.store = store
        self.limits = limits
        self.hasher = _Bounded(hasher or PasswordHasher())  # argon2id, RFC 9106 low-memory profile
        self.clock = clock
        # an unknown name is checked against this, so it takes as long as a wrong password
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # users

    def add_user(self, actor: User | None, name: str, role: str, password: str | None = None,
                 class_name: str | None = None) -> tuple[User, str | None]:
        """A new account. Without a password it gets a one-time one, returned, to be changed at
        first login. `class_name` enrols a learner in that class, or makes a teacher its teacher
        (the class is created if it does not exist). Names are unique whatever their case."""
        name = _canonical(name)
        self._check_name(name)
        self._check_role(role)
        password, one_time = _given_or_one_time(password)
        password_hash = self.hasher.hash(password)  # before the write lock: other writers need not wait for it
        with self.store.transaction():
            user = self.store.create_user(name, role, password_hash, must_change_password=one_time is not None)
            if class_name:
                self._join_class(user, class_name)
            self.store.audit(actor, "add_user", _target(user), {"role": role, "class": class_name})
        return user, one_time

    def user_named(self, actor: User | None, name: str) -> User:
        if actor is not None:
            self.require(actor, ADMIN)
        return self.store.user_named(_canonical(name))

    def set_role(self, actor: User | None, name: str, role: str) -> User:
        self._check_role(role)
        user = self.user_named(actor, name)
        self._keep_an_admin(user, demoted=role != ADMIN)
        user = self.store.update_user(user, role=role)
        self.store.audit(actor, "set_role", _target(user), {"role": role})
        return user

    def set_disabled(self, actor: User | None, name: str, disabled: bool) -> User:
        user = self.user_named(actor, name)
        if disabled:
            self._keep_an_admin(user, demoted=True)
        user = self.store.update_user(user, disabled=disabled)
        if disabled:
            self.store.end_sessions(user=user)
        self.store.audit(actor, "disable" if disabled else "enable", _target(user))
        return user

    def reset_password(self, actor: User | None, name: str, password: str | None = None) -> str | None:
        """A new password for someone (logs them out everywhere); without one, a one-time
        password is made and returned."""
        user = self.user_named(actor, name)
        password, one_time = _given_or_one_time(password)
        self.store.update_user(user, password_hash=self.hasher.hash(password),
                               must_change_password=one_time is not None)
        self.store.end_sessions(user=user)
        self.store.clear_login_failures(user.name.lower())
        self.store.audit(actor, "reset_password", _target(user))
        return one_time

    def change_own_password(self, user: User, new_password: str, repeated: str, old: str | None = None,
                            session_token: str | None = None, address: str | None = None) -> User:
        """A user's own new password. The current one is asked for, except right after a login with
        a one-time password (a wrong one counts as a failed login: a borrowed session cannot guess
        it); every other session of theirs ends (`session_token`'s stays)."""
        stored = self.store.password_hash(user)
        if not user.must_change_password:
            self._refuse_if_throttled(user.name, address)
            if not _verifies(self.hasher, stored, old or ""):
                self.store.add_login_failure(user.name.lower(), address, _stamp(self.clock()))
                raise InvalidInput("Your current password is not right.")
        if new_password != repeated:
            raise InvalidInput("The two passwords differ.")
        _check_password(new_password)
        if _verifies(self.hasher, stored, new_password):
            raise InvalidInput("Choose a password different from your current one.")
        user = self.store.update_user(user, password_hash=self.hasher.hash(new_password),
                                      must_change_password=False)
        self.store.end_sessions(user=user, keep=token_hash(session_token) if session_token else None)
        self.store.audit(user, "change_password", _target(user))
        return user

    def ensure_first_admin(self, demo: bool = True, admin_name: str = ADMIN) -> list[tuple[str, str, str]]:
        """On a database without an admin: make one named `admin_name` (a one-time password)
        and, unless `demo` is off, a demo class with a teacher and a learner. Returns (role, name,
        password) to print."""
        if self.store.count_users(ADMIN):
            return []
        self._check_name(_canonical(admin_name))
        created = []
        with self.store.transaction():
            admin, password = self.add_user(None, _free_name(self.store, _canonical(admin_name)), ADMIN)
            created.append((ADMIN, admin.name, password))
            if demo:
                demo_class = _free_name(self.store, "demo-class", table="classes")
                for role, name in ((TEACHER, "demo-teacher"), (LEARNER, "demo-learner")):
                    password = _new_password()
                    user, _ = self.add_user(None, _free_name(self.store, name), role, password,
                                            class_name=demo_class)
                    created.append((role, user.name, password))
        return created

    # logging in

    def login(self, name: str, password: str, address: str | None = None) -> tuple[User, str]:
        """A new web session for these credentials: (user, token for the cookie). An unknown
        name costs the same password check as a wrong password, so timing tells no one which
        names exist."""
        name, password = _canonical(name)[:100], (password or "")[:MAX_PASSWORD_CHARS]
        self._refuse_if_throttled(name, address)
        try:
            user = self.store.user_named(name)
            stored = self.store.password_hash(user)
        except NotFound:
            user, stored = None, None
        if not _verifies(self.hasher, stored or self._dummy_hash, password) or user is None:
            self.store.add_login_failure(name.lower(), address, _stamp(self.clock()))
            # the audit names an account by its id, never a name someone typed
            self.store.audit(None, "login_failed", _target(user) if user else "unknown name", by=LOGIN_FORM)
            raise LoginRefused(WRONG_CREDENTIALS)
        if user.disabled:
            self.store.audit(None, "login_failed", _target(user), {"reason": "disabled"}, by=LOGIN_FORM)
            raise LoginRefused("This account is disabled. Ask an admin to enable it.")
        self.store.clear_login_failures(name.lower(), (address,))
        self.store.record_login(user, address)
        if self.hasher.check_needs_rehash(stored):
            self.store.update_user(user, password_hash=self.hasher.hash(password))
        token = secrets.token_urlsafe(32)
        self.store.add_session(token_hash(token), user, self._expiry())
        self.store.audit(user, "login", _target(user))
        return user, token

    def _refuse_if_throttled(self, name: str, address: str | None) -> None:
        wait = self._throttle(name, address)
        if wait:
            raise LoginThrottled(f"Too many failed logins. Try again in {_duration(wait)} "
                                 "(or ask an admin to reset your password).")

    def _throttle(self, name: str, address: str | None) -> float:
        """Seconds before this name may be tried again from this address (0: now); see AccountLimits."""
        now = self.clock()
        since = _stamp(now - timedelta(hours=self.limits.failure_window_hours))
        lockout, name = 60.0 * self.limits.lockout_minutes, name.lower()
        tallies = [(self.store.login_failures(since, name=name, address=address), self.limits.name_failures, lockout)]
        if not self.store.logged_in_from(name, address):
            tallies += [(self.store.login_failures(since, address=address), self.limits.address_failures, lockout),
                        (self.store.login_failures(since, name=name, any_address=True),
                         self.limits.everywhere_failures, 60.0)]
        waits = [0.0]
        for (failures, last), threshold, longest in tallies:
            if failures >= threshold:
                delay = min(60.0 * 2 ** (failures - threshold), longest)
                waits.append((datetime.fromisoformat(last) + timedelta(seconds=delay) - now).total_seconds())
        return max(waits)

    def session_user(self, token: str | None) -> User:
        """The user a session cookie belongs to; AccessDenied if there is none or it ended."""
        session = self.store.session(token_hash(token)) if token else None
        if session is None:
            raise AccessDenied("Please log in.")
        if session["expires"] < _stamp(self.clock()):
            raise AccessDenied(EXPIRED)  # the row stays a day, so each request can say so
        user = self.store.user(session["user_id"])
        if user.disabled:
            raise AccessDenied("This account is disabled.")
        if session["last_seen"] < _stamp(self.clock() - timedelta(minutes=1)):
            self.store.touch_session(session["token_hash"], self._expiry())  # at most once a minute
        return user

    def logout(self, token: str | None) -> None:
        if token:
            self.store.end_sessions(token_hash=token_hash(token))

    def _expiry(self) -> str:
        return _stamp(self.clock() + timedelta(hours=self.limits.session_hours))

    # who may do what

    @staticmethod
    def require(user: User, *roles: str) -> User:
        if user.disabled or user.role not in roles:
            raise AccessDenied("You are not allowed to do that.")
        return user

    def readable_conversation(self, user: User, conversation_id: int) -> Conversation:
        """A conversation `user` may read: their own, their class's (teacher), any (admin)."""
        conversation = self.store.conversation(int(conversation_id), None)
        if conversation.user_id == user.id or user.role == ADMIN or (
                user.role == TEACHER and self.store.teaches(user, conversation.user_id)):
            return conversation
        raise NotFound(f"No conversation {conversation_id}.")  # the same answer as a missing one

    def classes(self, user: User) -> list[SchoolClass]:
        """The classes a teacher teaches; every class for an admin."""
        self.require(user, *STAFF)
        return self.store.classes(None if user.role == ADMIN else user)

    def school_class(self, user: User, class_id: int) -> SchoolClass:
        for school_class in self.classes(user):
            if school_class.id == int(class_id):
                return school_class
        raise NotFound(f"No class {class_id}.")

    def members(self, user: User, class_id: int) -> list[User]:
        return self.store.members(self.school_class(user, class_id))

    def learner_conversations(self, user: User, learner_id: int) -> list[Conversation]:
        learner = self.store.user(int(learner_id))
        if not (user.role == ADMIN or (user.role == TEACHER and self.store.teaches(user, learner.id))):
            raise NotFound(f"No learner {learner_id}.")
        return self.store.conversations(learner)

    # teachers' review of tutor turns, and their classes' reveal policy

    def review(self, teacher: User, message_id: int, marks: dict[str, bool | None], move: str | None = None,
               rewrite: str | None = None) -> Review:
        """A teacher's rubric marks, corrected move tag and/or rewrite of a tutor turn they may read."""
        message = self.readable_message(teacher, message_id)
        if message.role != "tutor":
            raise InvalidInput("Only the tutor's turns are reviewed.")
        unknown = set(marks) - set(RUBRIC)
        if unknown:
            raise InvalidInput(f"The rubric is {', '.join(RUBRIC)}; not {', '.join(sorted(unknown))}.")
        if move is not None and move not in MOVES:
            raise InvalidInput(f"A move is one of {', '.join(MOVES)}.")
        rewrite = clean_text(rewrite, what="rewrite") if rewrite and rewrite.strip() else None
        if rewrite is not None and rewrite == message.content:
            rewrite = None  # the same words are no rewrite
        if rewrite is None and (move is None or move == message.move) and all(v is None for v in marks.values()):
            raise InvalidInput("Mark the rubric, correct the move or rewrite the turn first.")
        review = self.store.save_review(message, teacher, marks, move, rewrite)
        self.store.audit(teacher, "review_turn", f"message:{message.id}",
                         {"marks": marks, "move": move, "rewritten": rewrite is not None})
        return review

    def readable_message(self, user: User, message_id: int) -> Message:
        """A message of a conversation `user` may read (staff); missing and not yours read alike."""
        self.require(user, *STAFF)
        try:
            message = self.store.message(int(message_id))
            self.readable_conversation(user, message.conversation_id)
        except NotFound:
            raise NotFound(f"No message {message_id}.") from None
        return message

    def set_class_policy(self, teacher: User, class_id: int, policy: RevealPolicy | None) -> SchoolClass:
        """The reveal policy new conversations of the class's learners run under (None: the
        deployment's default)."""
        school_class = self.school_class(teacher, class_id)
        if policy is not None and (policy.bottom_out_after < 1 or (
                policy.final_answer_after is not None and policy.final_answer_after < 1)):
            raise InvalidInput("Attempts before a reveal are at least 1.")
        self.store.set_class_policy(school_class, policy.to_json() if policy else None)
        self.store.audit(teacher, "set_class_policy", f"class:{school_class.id}",
                         policy.to_json() if policy else None)
        return self.store.school_class(school_class.id)

    def create_class(self, actor: User | None, name: str, teacher_name: str | None = None) -> SchoolClass:
        if actor is not None:
            self.require(actor, ADMIN)
        self._check_name(name, what="class name")
        teacher = self.store.user_named(teacher_name) if teacher_name else None
        if teacher is not None and teacher.role != TEACHER:
            raise InvalidInput(f"{teacher.name} is not a teacher.")
        school_class = self.store.create_class(name, teacher)
        self.store.audit(actor, "create_class", f"class:{school_class.id}", {"teacher": teacher_name})
        return school_class

    def edit_class(self, actor: User | None, class_name: str, new_name: str | None = None,
                   teacher_name: str | None = None) -> SchoolClass:
        """Rename a class and/or give it another teacher ("" for none; None: unchanged)."""
        if actor is not None:
            self.require(actor, ADMIN)
        school_class = self.store.class_named(class_name)
        changes = {}
        renamed = new_name is not None and new_name != school_class.name
        if renamed:
            self._check_name(new_name, what="class name")
            changes["name"] = [class_name, new_name]
        if teacher_name is not None:  # checked before anything changes
            teacher = self.user_named(actor, teacher_name) if teacher_name else None
            if teacher is not None and teacher.role != TEACHER:
                raise InvalidInput(f"{teacher.name} is not a teacher.")
            changes["teacher"] = teacher.name if teacher else None
        if not changes:
            raise InvalidInput("Give the class a new name or another teacher.")
        with self.store.transaction():
            if renamed:
                self.store.rename_class(school_class, new_name)
            if teacher_name is not None:
                self.store.set_class_teacher(school_class, teacher)
            self.store.audit(actor, "edit_class", f"class:{school_class.id}", changes)
        return self.store.school_class(school_class.id)

    def delete_class(self, actor: User | None, class_name: str) -> None:
        """The class goes; its learners stay, with their sessions, in no class of it."""
        if actor is not None:
            self.require(actor, ADMIN)
        school_class = self.store.class_named(class_name)
        members = len(self.store.members(school_class))
        self.store.delete_class(school_class)
        self.store.audit(actor, "delete_class", f"class:{school_class.id}", {"name": school_class.name,
                                                                             "learners": members})

    def enrol(self, actor: User | None, class_name: str, learner_name: str) -> None:
        learner = self.user_named(actor, learner_name)
        if learner.role != LEARNER:
            raise InvalidInput(f"{learner.name} is not a learner.")
        school_class = self.store.class_named(class_name)
        self.store.enrol(school_class, learner)
        self.store.audit(actor, "enrol", _target(learner), {"class": school_class.name})

    def unenrol(self, actor: User | None, class_name: str, learner_name: str) -> None:
        learner = self.user_named(actor, learner_name)
        school_class = self.store.class_named(class_name)
        if not self.store.unenrol(school_class, learner):
            raise InvalidInput(f"{learner.name} is not in {school_class.name}.")
        self.store.audit(actor, "unenrol", _target(learner), {"class": school_class.name})

    def audit(self, actor: User, action: str, target: str | None = None, detail: dict | None = None) -> None:
        self.store.audit(actor, action, target, detail)

    # privacy

    def export_user(self, actor: User | None, name: str) -> dict:
        user = self.user_named(actor, name)
        data = self.store.export_user(user)
        self.store.audit(actor, "export_user", _target(user))
        return data

    def delete_user(self, actor: User | None, name: str) -> None:
        """Every row of theirs goes: conversations, messages, feedback, mastery, sessions.
        Datasets built afterwards read the database, so they cannot include them."""
        user = self.user_named(actor, name)
        if actor is not None and user.id == actor.id:
            raise InvalidInput("You cannot delete your own account.")
        self._keep_an_admin(user, demoted=True)
        with self.store.transaction():
            self.store.delete_user(user)
            self.store.audit(actor, "delete_user", _target(user))
        self.store.checkpoint()

    def retention_days(self) -> int | None:
        value = self.store.setting(RETENTION_DAYS)
        return int(value) if value else None

    def set_retention_days(self, actor: User | None, days: int | None) -> None:
        if days is not None and not 1 <= int(days) <= 3650:
            raise InvalidInput("Keep transcripts between 1 and 3650 days, or leave it empty to keep them.")
        self.store.set_setting(RETENTION_DAYS, str(int(days)) if days else "")
        self.store.audit(actor, "set_retention", None, {"days": days})

    def apply_retention(self) -> int:
        """Purge sessions expired a day ago and transcripts idle for longer than the retention
        setting; returns how many conversations were purged."""
        self.store.end_sessions(expired_before=_stamp(self.clock() - timedelta(days=1)))
        days = self.retention_days()
        if not days:
            return 0
        return self.store.purge_transcripts(_stamp(self.clock() - timedelta(days=days)))

    # checks

    def _keep_an_admin(self, user: User, demoted: bool) -> None:
        if demoted and user.role == ADMIN and not user.disabled and self.store.count_users(ADMIN) <= 1:
            raise InvalidInput("This is the only admin; make another admin first.")

    def _join_class(self, user: User, class_name: str) -> None:
        try:
            school_class = self.store.class_named(class_name)
        except NotFound:
            school_class = self.create_class(None, class_name)
        if user.role == TEACHER:
            self.store.set_class_teacher(school_class, user)
        else:
            self.store.enrol(school_class, user)

    @staticmethod
    def _check_name(name: str, what: str = "name") -> None:
        if not NAME_PATTERN.fullmatch(name or ""):
            raise InvalidInput(f"A {what} is 2 to 40 letters, digits, '.', '_' or '-', "
                               "starting with a letter or digit.")

    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise InvalidInput(f"A role is one of {', '.join(ROLES)}.")


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password or "") <= MAX_PASSWORD_CHARS:
        raise InvalidInput(f"A password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.")


class _Bounded:
    """A password hasher that computes at most HASHES_AT_ONCE hashes at a time, process-wide:
    memory (and CPU) stay bounded whatever the number of logins under way."""

    _slots = threading.BoundedSemaphore(HASHES_AT_ONCE)

    def __init__(self, hasher: PasswordHasher):
        self._hasher = hasher

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        with self._slots:
            return self._hasher.verify(stored, password)

    def check_needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


def _verifies(hasher: _Bounded, stored: str | None, password: str) -> bool:
    try:
        return bool(stored) and hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _given_or_one_time(password: str | None) -> tuple[str, str | None]:
    """(the password to set, the one-time password to show or None): a given password must
    pass the length rule; without one, a one-time password is made."""
    if password is None:
        one_time = _new_password()
        return one_time, one_time
    _check_password(password)
    return password, None


def _canonical(name: str | None) -> str:
    """A name as it is stored and looked up: Unicode look-alikes folded (NFKC: a fullwidth 'ａ'
    is 'a'), no surrounding blanks. Names are ASCII, so a look-alike from another script is
    refused by the name rule, and the store compares names without regard to case."""
    return unicodedata.normalize("NFKC", name or "").strip()


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    return f"{seconds} seconds" if seconds < 90 else f"{round(seconds / 60)} minutes"


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def _free_name(store: Store, name: str, table: str = "users") -> str:
    """`name`, or `name-2`, `name-3`... if taken (a demo user someone renamed into place)."""
    candidate, number = name, 1
    while store.db[table].count_where(f"name = ?{NOCASE.get(table, '')}", [candidate]):
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def token_hash(token: str) -> str:
    """How a session's cookie token is stored and known (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _target(user: User) -> str:
    return f"user:{user.id}"


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")
