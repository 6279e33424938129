"""Schema as a numbered list of small migrations; never edit one that has shipped, add another."""

from sqlite_utils.migrations import Migrations

migrations = Migrations("tutor")


@migrations()
def m001_initial(db):
    db["users"].create(
        {"id": int, "name": str, "role": str, "password_hash": str, "created": str},
        pk="id",
        not_null={"name", "role", "created"},
    )
    db["users"].create_index(["name"], unique=True)
    db["problems"].create(
        {"id": str, "question": str, "answer": str, "solution": str, "source": str, "created": str},
        pk="id",
        not_null={"question", "source", "created"},
    )
    db["conversations"].create(
        {
            "id": int,
            "user_id": int,
            "problem_id": str,
            "status": str,
            "policy": str,
            "created": str,
            "updated": str,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id"), ("problem_id", "problems", "id")],
        not_null={"user_id", "problem_id", "status", "created", "updated"},
    )
    db["conversations"].create_index(["user_id", "updated"])
    db["messages"].create(
        {
            "id": int,
            "conversation_id": int,
            "role": str,
            "content": str,
            "model_version": str,
            "move": str,
            "hint_level": int,
            "planner_state": str,
            "generation_params": str,
            "latency_ms": int,
            "created": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
        not_null={"conversation_id", "role", "content", "created"},
    )
    db["messages"].create_index(["conversation_id", "id"])
    db["feedback"].create(
        {
            "id": int,
            "message_id": int,
            "user_id": int,
            "kind": str,
            "value": int,
            "comment": str,
            "created": str,
        },
        pk="id",
        foreign_keys=[("message_id", "messages", "id"), ("user_id", "users", "id")],
        not_null={"message_id", "user_id", "kind", "created"},
    )
    # One thumb per learner per message: clicking again changes it.
    db["feedback"].create_index(["message_id", "user_id", "kind"], unique=True)


@migrations()
def m002_mastery(db):
    db["mastery"].create(
        {"user_id": int, "skill": str, "p_known": float, "observations": int, "updated": str},
        pk=("user_id", "skill"),
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "skill", "p_known", "observations", "updated"},
    )


@migrations()
def m003_models_and_training(db):
    # The registry's record of trained versions (their files live in models/<version>/).
    db["model_versions"].create(
        {"version": str, "base": str, "parent": str, "path": str, "manifest": str, "created": str},
        pk="version",
        not_null={"version", "base", "path", "manifest", "created"},
    )
    # champion (served), candidate (awaiting the gate): an alias names one version.
    db["model_aliases"].create(
        {"alias": str, "version": str, "updated": str},
        pk="alias",
        foreign_keys=[("version", "model_versions", "version")],
        not_null={"alias", "version", "updated"},
    )
    db["training_runs"].create(
        {
            "id": int,
            "kind": str,  # sft | kd (later kto, dpo)
            "status": str,  # queued | running | done | failed
            "config": str,
            "step": int,
            "total_steps": int,
            "loss": float,
            "eta_s": int,
            "message": str,  # the error of a failed run, or what it produced
            "version": str,
            "pid": int,
            "created": str,
            "updated": str,
        },
        pk="id",
        not_null={"kind", "status", "config", "created", "updated"},
    )


@migrations()
def m004_accounts(db):
    # A user without a password hash (the terminal's local learner) cannot log in on the web.
    db["users"].add_column("disabled", int, not_null_default=0)
    db["users"].add_column("must_change_password", int, not_null_default=0)
    db["classes"].create(
        {"id": int, "name": str, "teacher_id": int, "created": str},
        pk="id",
        foreign_keys=[("teacher_id", "users", "id")],
        not_null={"name", "created"},
    )
    db["classes"].create_index(["name"], unique=True)
    db["enrolments"].create(
        {"class_id": int, "user_id": int, "created": str},
        pk=("class_id", "user_id"),
        foreign_keys=[("class_id", "classes", "id"), ("user_id", "users", "id")],
        not_null={"class_id", "user_id", "created"},
    )
    db["enrolments"].create_index(["user_id"])
    # Web sessions: only a hash of the cookie's token is stored.
    db["sessions"].create(
        {"token_hash": str, "user_id": int, "created": str, "last_seen": str, "expires": str},
        pk="token_hash",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "created", "last_seen", "expires"},
    )
    db["sessions"].create_index(["user_id"])
    # Failed logins, for throttling: by the name tried (which may not exist) and the address.
    db["login_failures"].create(
        {"id": int, "name": str, "address": str, "at": str}, pk="id", not_null={"name", "at"}
    )
    db["login_failures"].create_index(["name", "at"])
    db["login_failures"].create_index(["address", "at"])
    # Who did what to whom: teachers' and admins' actions. Targets are ids, never a learner's data.
    db["audit_log"].create(
        {"id": int, "actor_id": int, "actor": str, "action": str, "target": str, "detail": str,
         "at": str},
        pk="id",
        not_null={"actor", "action", "at"},
    )
    db["settings"].create({"key": str, "value": str, "updated": str}, pk="key",
                          not_null={"value", "updated"})


@migrations()
def m005_review_and_rounds(db):
    # Simulated learner sessions (labels before real users arrive) can be left out of a round.
    db["conversations"].add_column("origin", str, not_null_default="live")  # live | simulated
    # A teacher's reveal policy for a class (JSON); none: the deployment's flags.
    db["classes"].add_column("policy", str)
    # A teacher's review of one tutor turn: rubric marks (1 yes, 0 no, null not judged), a
    # corrected move tag, a rewrite. One review per teacher per turn; saving again changes it.
    db["reviews"].create(
        {"id": int, "message_id": int, "teacher_id": int, "correct": int, "socratic": int,
         "no_leak": int, "encouraging": int, "move": str, "rewrite": str, "created": str,
         "updated": str},
        pk="id",
        foreign_keys=[("message_id", "messages", "id"), ("teacher_id", "users", "id")],
        not_null={"message_id", "teacher_id", "created", "updated"},
    )
    db["reviews"].create_index(["message_id", "teacher_id"], unique=True)
    # Every change of an alias, so a promotion can be rolled back to what served before it.
    db["alias_changes"].create(
        {"id": int, "alias": str, "version": str, "previous": str, "reason": str, "actor": str, "at": str},
        pk="id", not_null={"alias", "version", "reason", "actor", "at"},
    )
    # Rounds: the loss at every step (the admin page's plot), a cancel request, the gate's verdict.
    db["training_runs"].add_column("losses", str)
    db["training_runs"].add_column("cancel_requested", int, not_null_default=0)
    db["training_runs"].add_column("gate", str)


@migrations()
def m006_names_without_case(db):
    # "Admin2" beside "admin2" is one name. A database that already holds two such users keeps
    # them (the app refuses any new one); the index backs the app's check up everywhere else.
    duplicated = db.execute("select 1 from users group by name collate nocase having count(*) > 1").fetchone()
    if duplicated is None:
        db.execute("create unique index users_name_nocase on users(name collate nocase)")


@migrations()
def m007_known_logins(db):
    # Where each user has logged in from: failed logins by others from the same address (a
    # school behind one NAT) do not slow them down.
    db["known_logins"].create(
        {"user_id": int, "address": str, "last": str},
        pk=("user_id", "address"),
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "last"},
    )
