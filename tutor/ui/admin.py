"""The admin page: users and roles, classes, a learner's data (export, delete), retention, audit,
and the model: RLHF rounds (start, live progress, cancel, schedule), the evaluation gate, promote
and roll back the served version."""

from __future__ import annotations

import html
import json
from urllib.parse import urlencode

import gradio as gr

from tutor.accounts import ADMIN, ROLES, TEACHER, AccountService
from tutor.errors import InvalidInput
from tutor.evaluation.gate import GATE, PRIMARY, refusal
from tutor.rounds import ADVISED_EXAMPLES, UNITS, Rounds, Schedule
from tutor.service import TutorService
from tutor.storage.store import TrainingRun, User
from tutor.ui.access import allow
from tutor.ui.exports import EXPORT_KEEP_S, PendingExports
from tutor.ui.navigation import navigation_bar
from tutor.ui.teacher import parse_day

CLASS_COLUMNS = ["class", "teacher", "learners", "members"]
USER_COLUMNS = ["name", "role", "classes", "last login", "disabled", "must change password", "id"]
AUDIT_COLUMNS = ["at", "who", "action", "target", "detail"]
RUN_COLUMNS = ["round", "kind", "status", "version", "step", "loss", "started", "message"]
GATE_COLUMNS = ["metric", "champion", "candidate", "change", "95% interval", "tolerance", "verdict"]
NO_ROUNDS = "Rounds are off: this deployment serves a student that cannot be trained here."
EXPORTS_PATH = "/admin/exports"  # the admin-only route an export is downloaded from (tutor.ui.web)
AUDIT_CSV = "/admin/audit.csv"  # the audit log as filtered, as CSV (tutor.ui.web)


def build_admin_page(service: TutorService, accounts: AccountService, rounds: Rounds | None = None,
                     exports: PendingExports | None = None) -> gr.Blocks:
    admin_only = allow(accounts, ADMIN)
    store = service.store
    exports = exports if exports is not None else PendingExports()

    def users_table(users: list[User]) -> list[list]:
        def classes(user: User) -> str:  # a teacher's classes are those they teach
            taught = store.classes(user) if user.role == TEACHER else store.classes_of(user)
            return ", ".join(c.name for c in taught)
        last = store.last_logins()
        return [[u.name, u.role, classes(u), (last.get(u.id) or "never")[:16].replace("T", " "), u.disabled,
                 u.must_change_password, u.id] for u in users]

    def audit_table(words: str | None = None, since: str | None = None) -> list[list]:
        return audit_rows(store, words, since, limit=200)

    def classes_table() -> list[list]:
        def teacher_name(school_class) -> str:
            return store.user(school_class.teacher_id).name if school_class.teacher_id else "—"
        return [[c.name, teacher_name(c), len(members := store.members(c)), ", ".join(m.name for m in members)]
                for c in store.classes()]

    def refreshed(message: str, **chosen_class) -> tuple:
        """Every table and list after a change; `value=`: the class now chosen (renamed, deleted)."""
        users = store.users()
        names = [u.name for u in users]
        return (message, users_table(users), gr.update(choices=names), gr.update(choices=names),
                gr.update(choices=[c.name for c in store.classes()], **chosen_class), audit_table(), classes_table())

    with gr.Blocks(title="Socratic tutor · admin") as page:
        navigation_bar(page, accounts, "admin")
        gr.Markdown("# Administration")
        result = gr.Markdown(elem_id="admin-result")
        with gr.Tab("Users") as users_tab:
            user_search = gr.Textbox(label="Find users (name, role or class)", max_length=40, elem_id="user-search")
            users = gr.Dataframe(headers=USER_COLUMNS, interactive=False, elem_id="users")
            with gr.Row():
                new_name = gr.Textbox(label="New user's name", max_length=40)
                new_role = gr.Dropdown(list(ROLES), value="learner", label="Role")
                new_class = gr.Textbox(label="Class (optional; created if new)", max_length=40)
                add = gr.Button("Add user", variant="primary")
            with gr.Row():
                who = gr.Dropdown([], label="User", elem_id="who")
                role = gr.Dropdown(list(ROLES), label="New role")
                set_role = gr.Button("Set role")
                disable = gr.Button("Disable")
                enable = gr.Button("Enable")
                reset = gr.Button("Reset password")
        with gr.Tab("Classes") as classes_tab:
            with gr.Row():
                class_name = gr.Textbox(label="Class name", max_length=40)
                teacher = gr.Textbox(label="Teacher's name (optional)", max_length=40)
                create_class = gr.Button("Create class")
            with gr.Row():
                class_picker = gr.Dropdown([], label="Class", elem_id="class-picker")
                learner_name = gr.Textbox(label="Learner's name", max_length=40)
                enrol = gr.Button("Enrol")
                unenrol = gr.Button("Take out of the class")
            with gr.Row():
                class_rename = gr.Textbox(label="The class's name", max_length=40, elem_id="class-rename")
                class_teacher = gr.Textbox(label="Its teacher (empty: none)", max_length=40, elem_id="class-teacher")
                save_class = gr.Button("Save the class", elem_id="save-class")
                class_confirm = gr.Textbox(label="Type the class's name again to delete it", max_length=40,
                                           elem_id="class-confirm")
                delete_class = gr.Button("Delete the class", variant="stop", elem_id="delete-class")
            classes_view = gr.Dataframe(headers=CLASS_COLUMNS, interactive=False, elem_id="classes", wrap=True)
        with gr.Tab("Learner data") as data_tab:
            gr.Markdown("Export everything stored about a user as JSON, or delete it all: "
                        "conversations, messages, ratings, mastery. Datasets built afterwards "
                        "cannot include a deleted learner.")
            with gr.Row():
                subject = gr.Dropdown([], label="User", elem_id="subject")
                export = gr.Button("Export (JSON)")
                confirm = gr.Textbox(label="Type the name again to delete", max_length=40)
                delete = gr.Button("Delete user and data", variant="stop")
            exported = gr.Markdown(elem_id="export-link", sanitize_html=False)  # our own link
        with gr.Tab("Settings") as settings_tab:
            retention = gr.Number(label="Keep raw transcripts for (days; empty: keep)", precision=0,
                                  minimum=1, maximum=3650)
            with gr.Row():
                save_retention = gr.Button("Save")
                purge = gr.Button("Apply retention now")
        with gr.Tab("Audit log") as audit_tab:
            with gr.Row():
                audit_words = gr.Textbox(label="Who, action or target contains", max_length=60, elem_id="audit-words")
                audit_since = gr.Textbox(label="Since (YYYY-MM-DD)", max_length=10)
                audit_refresh = gr.Button("Refresh", elem_id="audit-refresh")
            audit = gr.Dataframe(headers=AUDIT_COLUMNS, interactive=False, elem_id="audit")
            audit_csv = gr.Markdown(f"[Download the audit log (CSV)]({AUDIT_CSV})", elem_id="audit-csv")
        with gr.Tab("Model", elem_id="model-tab") as model_tab:
            served = gr.Markdown(elem_id="served")
            with gr.Row():
                kind = gr.Radio([("DPO (pairs)", "dpo"), ("KTO (rated turns)", "kto"),
                                 ("Self-imitation (its own drafts the judge keeps)", "self-imitation"),
                                 ("Conditional (rated turns, each under its rating)", "conditional")],
                                value="dpo", label="Round")  # no emoji: boxes without an emoji font
                with gr.Column(min_width=200):
                    simulated = gr.Checkbox(True, label="Include simulated sessions")
                    teachers = gr.Checkbox(False, label="Add MRBench's rated teacher turns (DPO)", elem_id="mrbench")
                    planner_pairs = gr.Checkbox(False, label="Add the judge's choice between the planner's words "
                                                "and each sent draft (DPO)", elem_id="planner-pairs")
                start = gr.Button("Start a round", variant="primary", elem_id="start-round")
                cancel = gr.Button("Cancel the round", variant="stop", elem_id="cancel-round", interactive=False)
            with gr.Row():
                round_plan = gr.Markdown(elem_id="round-plan")
                anyway = gr.Checkbox(False, label=f"Start even with fewer than {ADVISED_EXAMPLES} examples",
                                     elem_id="start-anyway")
            progress = gr.Markdown(elem_id="round-progress", sanitize_html=False)  # our own <progress>; text escaped
            loss_plot = gr.LinePlot(x="step", y="loss", title="Loss", height=220, elem_id="loss-plot")
            gr.Markdown("#### Evaluation gate: candidate beside champion\nPromotion needs a win: the judge's "
                        "score of the turns learners see, higher dialogue by dialogue, with a 95% interval "
                        "of the difference above 0 (a bootstrap over the validation dialogues). It is refused "
                        "too when any metric moves the wrong way by more than its tolerance.")
            # tall enough for every row and the verdict below them, unscrolled
            gate = gr.Dataframe(headers=GATE_COLUMNS, interactive=False, elem_id="gate", max_height=900)
            with gr.Row():
                promote = gr.Button("Promote the candidate", elem_id="promote")
                rollback = gr.Button("Roll back", elem_id="rollback")
            with gr.Accordion("Schedule", open=False):
                with gr.Row():
                    schedule_kind = gr.Radio([("DPO", "dpo"), ("KTO", "kto"), ("Self-imitation", "self-imitation"),
                                              ("Conditional", "conditional")],
                                             value="dpo", label="Round")
                    every_days = gr.Number(label="Every N days (empty: off)", minimum=0)
                    after_labels = gr.Number(label="After M new labels (empty: off)", precision=0, minimum=0)
                    save_schedule = gr.Button("Save schedule")
            runs_table = gr.Dataframe(headers=RUN_COLUMNS, interactive=False, elem_id="runs")
            timer = gr.Timer(2.0, active=True)

        @admin_only
        def on_load(admin: User):
            return (*refreshed("")[1:], accounts.retention_days())

        @admin_only
        def on_add(admin: User, name: str, role_name: str, class_text: str):
            user, password = accounts.add_user(admin, (name or "").strip(), role_name,
                                               class_name=(class_text or "").strip() or None)
            return refreshed(f"Added **{user.name}** ({user.role}). One-time password, shown once: "
                             f"`{password}`")

        @admin_only
        def on_set_role(admin: User, name: str, role_name: str):
            user = accounts.set_role(admin, _chosen(name), role_name)
            return refreshed(f"{user.name} is now {user.role}.")

        @admin_only
        def on_disable(admin: User, name: str):
            if _chosen(name) == admin.name:
                raise InvalidInput("You cannot disable yourself.")
            return refreshed(f"{accounts.set_disabled(admin, _chosen(name), True).name} is disabled "
                             "and logged out.")

        @admin_only
        def on_enable(admin: User, name: str):
            return refreshed(f"{accounts.set_disabled(admin, _chosen(name), False).name} is enabled.")

        @admin_only
        def on_reset(admin: User, name: str):
            password = accounts.reset_password(admin, _chosen(name))
            return refreshed(f"New one-time password for {_chosen(name)}, shown once: `{password}`")

        @admin_only
        def on_create_class(admin: User, name: str, teacher_name: str):
            created = accounts.create_class(admin, (name or "").strip(),
                                            (teacher_name or "").strip() or None)
            return refreshed(f"Class **{created.name}** created.")

        @admin_only
        def on_enrol(admin: User, class_label: str, name: str):
            accounts.enrol(admin, _chosen(class_label, "a class"), (name or "").strip())
            return refreshed(f"{name.strip()} enrolled in {class_label}.")

        @admin_only
        def on_export(admin: User, name: str):
            data = accounts.export_user(admin, _chosen(name))
            filename = f"{data['user']['name']}.json"
            key = exports.add(data["user"]["id"], filename,
                              json.dumps(data, indent=2, ensure_ascii=False).encode())
            link = (f'<a href="{EXPORTS_PATH}/{key}" download="{html.escape(filename)}" id="download-export">'
                    f"Download {html.escape(filename)}</a> (once, within {EXPORT_KEEP_S // 60} minutes)")
            return (*refreshed(f"Exported {data['user']['name']}: "
                               f"{len(data['conversations'])} conversations."), link)

        @admin_only
        def on_delete(admin: User, name: str, confirmation: str):
            _confirmed(name, confirmation, "user's")
            user = accounts.user_named(admin, name)
            accounts.delete_user(admin, name)
            exports.forget_user(user.id)
            return (*refreshed(f"Deleted {name} and all their data."), "", "")

        @admin_only
        def on_tab(admin: User):
            return ""  # a message (a one-time password above all) belongs to the tab it was shown on

        @admin_only
        def on_class_picked(admin: User, class_label: str | None):
            if not class_label:
                return "", "", ""
            school_class = store.class_named(class_label)
            teacher_name = store.user(school_class.teacher_id).name if school_class.teacher_id else ""
            return school_class.name, teacher_name, ""

        @admin_only
        def on_save_class(admin: User, class_label: str, new_name: str, teacher_name: str):
            edited = accounts.edit_class(admin, _chosen(class_label, "a class"), (new_name or "").strip(),
                                         (teacher_name or "").strip())
            return refreshed(f"Class **{edited.name}** saved.", value=edited.name)

        @admin_only
        def on_delete_class(admin: User, class_label: str, confirmation: str):
            _confirmed(class_label, confirmation, "class's")
            accounts.delete_class(admin, class_label)
            return (*refreshed(f"Deleted the class {class_label}; its learners and their sessions stay.", value=None),
                    "", "", "")

        @admin_only
        def on_unenrol(admin: User, class_label: str, name: str):
            accounts.unenrol(admin, _chosen(class_label, "a class"), (name or "").strip())
            return refreshed(f"{name.strip()} is no longer in {class_label}.")

        @admin_only
        def on_user_search(admin: User, words: str):
            words = (words or "").strip().lower()
            return [row for row in users_table(store.users())
                    if not words or any(words in str(cell).lower() for cell in row[:3])]

        @admin_only
        def on_audit(admin: User, words: str, since_day: str):
            words, since = (words or "").strip(), parse_day(since_day)
            query = urlencode({k: v for k, v in (("words", words), ("since", since)) if v})
            return (audit_table(words, since),
                    f"[Download the audit log (CSV)]({AUDIT_CSV}{'?' + query if query else ''})")

        @admin_only
        def on_save_retention(admin: User, days: float | None):
            accounts.set_retention_days(admin, int(days) if days else None)
            return refreshed(f"Transcripts are kept for {int(days)} days." if days
                             else "Transcripts are kept.")

        @admin_only
        def on_purge(admin: User):
            purged = accounts.apply_retention()
            accounts.audit(admin, "apply_retention", None, {"conversations": purged})
            return refreshed(f"Purged the transcripts of {purged} conversations.")

        def needs_rounds() -> Rounds:
            if rounds is None:
                raise InvalidInput(NO_ROUNDS)
            return rounds

        def model_view(message: str = "") -> tuple:
            if rounds is None:
                return (NO_ROUNDS, "", None, [], [], gr.update(interactive=False))
            recent = rounds.runs()
            latest = recent[0] if recent else None
            running = latest is not None and latest.active  # nothing to cancel otherwise
            return (_served(rounds) + (f"\n\n{message}" if message else ""), _progress(latest),
                    _losses(latest), _gate_rows(rounds), [_run_row(r) for r in recent],
                    gr.update(interactive=running))

        @admin_only
        def on_model(admin: User):
            return model_view()

        @admin_only
        def on_plan(admin: User, round_kind: str, with_simulated: bool, with_teachers: bool, with_planner: bool):
            if rounds is None:
                return NO_ROUNDS
            plan = rounds.plan(round_kind, bool(with_simulated), bool(with_teachers))
            judged = round_kind == "dpo" and with_planner
            return (f"**A round now would train** {html.escape(plan.summary())}"
                    + (", and pairs of the planner's words and the sent drafts, the one the judge scores "
                       "higher chosen (counted as the round builds its data)" if judged else "") + "."
                    + (f"  \n**Few examples:** below {ADVISED_EXAMPLES} a round rarely learns anything the gate "
                       "can see; more ratings and rewrites from teachers help most." if plan.few else ""))

        @admin_only
        def on_start(admin: User, round_kind: str, with_simulated: bool, with_teachers: bool, with_planner: bool,
                     few_is_fine: bool):
            plan = needs_rounds().plan(round_kind, bool(with_simulated), bool(with_teachers))
            if plan.few and not few_is_fine:
                raise InvalidInput(f"Only {plan.examples} {UNITS[plan.kind]}: below {ADVISED_EXAMPLES} a round rarely "
                                   f"learns anything. Tick \"Start even with fewer than {ADVISED_EXAMPLES} examples\" to start it anyway.")
            run = rounds.start(admin, round_kind, bool(with_simulated), bool(with_teachers),
                               planner_pairs=round_kind == "dpo" and bool(with_planner))
            return (*model_view(f"Round {run.id} started: {html.escape(plan.summary())}."), False)

        @admin_only
        def on_cancel(admin: User):
            active = service.store.active_training_run()
            if active is None:
                raise InvalidInput("No round is running.")
            needs_rounds().cancel(admin, active.id)
            return model_view(f"Cancelling round {active.id}; the champion keeps serving.")

        @admin_only
        def on_promote(admin: User):
            candidate = needs_rounds().registry.alias("candidate")
            if not candidate or candidate == rounds.champion():
                raise InvalidInput("There is no candidate to promote.")
            rounds.promote(admin, candidate)
            return model_view(f"{candidate} is serving now.")

        @admin_only
        def on_rollback(admin: User):
            version = needs_rounds().rollback(admin)
            return model_view(f"Rolled back: {version} is serving now.")

        @admin_only
        def on_save_schedule(admin: User, schedule_round: str, days: float | None, labels: float | None):
            schedule = needs_rounds().set_schedule(admin, Schedule(
                schedule_round, float(days) if days else None, int(labels) if labels else None))
            return model_view("Schedule saved: " + _schedule_text(schedule))

        @admin_only
        def on_load_schedule(admin: User):
            schedule = rounds.schedule() if rounds else Schedule()
            return schedule.kind, schedule.every_days, schedule.after_labels

        model_outputs = [served, progress, loss_plot, gate, runs_table, cancel]
        page.load(on_model, None, model_outputs, api_visibility="private")
        page.load(on_load_schedule, None, [schedule_kind, every_days, after_labels], api_visibility="private")
        timer.tick(on_model, None, model_outputs, api_visibility="private", show_progress="hidden")
        start.click(on_start, [kind, simulated, teachers, planner_pairs, anyway], [*model_outputs, anyway],
                    api_name="start_round")
        gr.on([model_tab.select, kind.input, simulated.input, teachers.input, planner_pairs.input], on_plan,
              [kind, simulated, teachers, planner_pairs],
              round_plan,
              api_name="round_plan")
        cancel.click(on_cancel, None, model_outputs, api_name="cancel_round")
        promote.click(on_promote, None, model_outputs, api_name="promote")
        rollback.click(on_rollback, None, model_outputs, api_name="rollback")
        save_schedule.click(on_save_schedule, [schedule_kind, every_days, after_labels], model_outputs,
                            api_name="set_schedule")

        managed = [result, users, who, subject, class_picker, audit, classes_view]
        page.load(on_load, None, [*managed[1:], retention], api_visibility="private")
        add.click(on_add, [new_name, new_role, new_class], managed, api_name="add_user")
        set_role.click(on_set_role, [who, role], managed, api_name="set_role")
        disable.click(on_disable, who, managed, api_name="disable_user")
        enable.click(on_enable, who, managed, api_name="enable_user")
        reset.click(on_reset, who, managed, api_name="reset_password")
        create_class.click(on_create_class, [class_name, teacher], managed, api_name="create_class")
        enrol.click(on_enrol, [class_picker, learner_name], managed, api_name="enrol")
        unenrol.click(on_unenrol, [class_picker, learner_name], managed, api_name="unenrol")
        class_picker.input(on_class_picked, class_picker, [class_rename, class_teacher, class_confirm],
                           api_visibility="private")
        save_class.click(on_save_class, [class_picker, class_rename, class_teacher], managed, api_name="edit_class")
        delete_class.click(on_delete_class, [class_picker, class_confirm],
                           [*managed, class_rename, class_teacher, class_confirm], api_name="delete_class")
        user_search.change(on_user_search, user_search, users, api_name="find_users")
        for tab in (users_tab, classes_tab, data_tab, settings_tab, audit_tab, model_tab):
            tab.select(on_tab, None, result, api_visibility="private")
        export.click(on_export, subject, [*managed, exported], api_name="export_user")
        delete.click(on_delete, [subject, confirm], [*managed, exported, confirm], api_name="delete_user")
        save_retention.click(on_save_retention, retention, managed, api_name="set_retention")
        purge.click(on_purge, None, managed, api_name="apply_retention")
        gr.on([audit_refresh.click, audit_words.submit, audit_since.submit], on_audit, [audit_words, audit_since],
              [audit, audit_csv], api_name="audit_log")
    return page


def audit_rows(store, words: str | None = None, since: str | None = None, limit: int | None = 200) -> list[list]:
    """The newest audit entries as AUDIT_COLUMNS rows; `words` in who, action or target; `since` a day."""
    return [[row["at"][:19].replace("T", " "), row["actor"], row["action"], row["target"] or "",
             json.dumps(row["detail"]) if row["detail"] else ""]
            for row in store.audit_log(limit, (words or "").strip() or None, since)]


def _served(rounds: Rounds) -> str:
    candidate = rounds.registry.alias("candidate")
    schedule = rounds.schedule()
    return (f"**Serving:** `{rounds.service.student.version}` (champion {rounds.champion() or 'none: the base'})"
            f" · **candidate:** {candidate or 'none'} · **schedule:** {_schedule_text(schedule)}")


def _schedule_text(schedule: Schedule) -> str:
    if not schedule.on:
        return "off"
    parts = ([f"every {schedule.every_days:g} days"] if schedule.every_days else []) + (
        [f"after {schedule.after_labels} new labels"] if schedule.after_labels else [])
    return f"{schedule.kind.upper()} " + " or ".join(parts)


def _progress(run: TrainingRun | None) -> str:
    """The latest round's state in words, with a progress bar while it runs (steps once training
    has begun; before that, one that says it is preparing)."""
    if run is None:
        return "No round yet."
    line = f"**Round {run.id}** ({run.kind.upper()}) · **{run.status}**"
    bar = ""
    if run.total_steps:
        line += f" · step {run.step or 0} of {run.total_steps}"
        if run.loss is not None:
            line += f" · loss {run.loss:.4f}"
        if run.eta_s is not None and run.active:
            line += f" · about {run.eta_s // 60} min {run.eta_s % 60} s left"
        if run.active:
            bar = (f'<progress value="{run.step or 0}" max="{run.total_steps}" '
                   f'aria-label="training step {run.step or 0} of {run.total_steps}"></progress>')
    elif run.active:
        bar = '<progress aria-label="preparing the round"></progress>'  # no value: under way, length unknown
    message = f"  \n{html.escape(run.message)}" if run.message else ""
    return line + (f"  \n{bar}" if bar else "") + message


def _losses(run: TrainingRun | None):
    import pandas as pd

    return pd.DataFrame(run.losses if run and run.losses else [], columns=["step", "loss"])


def _gate_rows(rounds: Rounds) -> list[list]:
    """The latest verdict, or the tolerances alone before any round measured one."""
    gate = next((r.gate for r in rounds.store.training_runs(limit=20) if r.gate), None)
    if gate is None:
        return [[g.label + (" (primary: needs a win)" if g.metric == PRIMARY else ""), "—", "—", "—", "—",
                 f"±{g.tolerance:g}", "not measured yet"] for g in GATE]

    def figure(value) -> str:
        return "—" if value is None else f"{value:.3f}"

    def interval(row) -> str:
        found = row.get("interval")
        return f"{found['low']:+.3f} to {found['high']:+.3f}" if found else "—"
    win = gate.get("win") or {}
    return [[row["label"] + (" (primary: needs a win)" if row["metric"] == win.get("metric") else ""),
             figure(row["champion"]), figure(row["candidate"]),
             "—" if row.get("change") is None else f"{row['change']:+.3f}", interval(row), f"±{row['tolerance']:g}",
             "ok" if row["passed"] else "REGRESSED"] for row in gate["rows"]] + [
        [f"verdict ({gate['candidate']} vs {gate['champion']})", "", "", "", "", "",
         "PASSED" if gate["passed"] else f"REFUSED: {refusal(gate)}"]]


def _run_row(run: TrainingRun) -> list:
    # a round that failed or was cancelled made no version, whatever name it had reserved
    version = "" if run.status in ("failed", "cancelled") else run.version or ""
    return [run.id, run.kind, run.status, version, f"{run.step or 0}/{run.total_steps or '?'}",
            f"{run.loss:.4f}" if run.loss is not None else "", run.created[:16].replace("T", " "),
            run.message or ""]


def _confirmed(name: str | None, confirmation: str | None, whose: str) -> None:
    """A deletion goes ahead only when the name chosen is typed again."""
    if not name or (confirmation or "").strip() != name:
        raise InvalidInput(f"Type the {whose} name again to confirm the deletion.")


def _chosen(name: str | None, what: str = "a user") -> str:
    if not name:
        raise InvalidInput(f"Choose {what} first.")
    return name
