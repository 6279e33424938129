"""The teacher page: your classes and their learners; transcripts; reviewing tutor turns (rubric,
move tag, rewrite: the labels RLHF rounds learn from); each class's reveal policy.

Everything a learner or the model wrote reaches the page through `as_text`: shown as the
characters typed, never as Markdown or HTML, so no learner can make a teacher's browser fetch an
image or show a link."""

from __future__ import annotations

import html
import re
from dataclasses import asdict, dataclass
from typing import Mapping
from urllib.parse import urlencode

import gradio as gr

from tutor.accounts import STAFF, AccountService
from tutor.domain.dialogues import MOVES
from tutor.domain.policy import RevealPolicy
from tutor.errors import InvalidInput
from tutor.service import LEARNER_ROLE, STUCK_ATTEMPTS, STUCK_HINTS, TutorService
from tutor.storage.store import RUBRIC, Message, User
from tutor.ui.access import allow
from tutor.ui.learner import STATUS, shorten
from tutor.ui.navigation import navigation_bar

LEARNER_COLUMNS = ["learner", "sessions", "solved", "learner messages", "mean mastery", "last active"]
STUCK_COLUMNS = ["learner", "problem", "step", "failed attempts", "hints", "last active"]
NO_TRANSCRIPT = "_Pick a class, a learner and a session._"
# ratings as words: a 👎 glyph is an empty box where no emoji font is installed
TURN_COLUMNS = ["turn", "learner", "problem", "when", "model", "move", "rated", "learner's comment", "draft failed",
                "reviewed", "judge", "tutor said"]
RATED = {1: "up", -1: "down"}
# wide enough for each header's words (a squeezed column wraps its header letter by letter)
TURN_WIDTHS = ["70px", "100px", "100px", "150px", "110px", "100px", "80px", "200px", "80px", "100px", "80px",
               "400px"]
MARKS = {"—": None, "yes": True, "no": False}
RUBRIC_LABELS = {"correct": "Correct", "socratic": "Socratic", "no_leak": "No leak", "encouraging": "Encouraging"}
TURNS_CSV = "/teach/turns.csv"  # the turns the review tab found, as CSV (tutor.ui.web)
# every character Markdown or a link finder could read as syntax: `![x](url)`, `<img>`, `www.`,
# `http://`, `a@b.c`, list and heading markers
MARKUP = re.compile(r"[\\`*_{}\[\]()#+\-.!|~:@<>&\"'=/]")


def build_teacher_page(service: TutorService, accounts: AccountService) -> gr.Blocks:
    staff = allow(accounts, *STAFF)
    store = service.store

    with gr.Blocks(title="Socratic tutor · teacher") as page:
        navigation_bar(page, accounts, "teach")
        gr.Markdown("# Your classes\nRead how the tutor worked with your learners, and correct it: "
                    "your ratings and rewrites teach the next model version.")
        class_picker = gr.Dropdown([], label="Class", elem_id="class-picker")
        result = gr.Markdown(elem_id="teacher-result")
        with gr.Tab("Class dashboard", elem_id="dashboard-tab"):
            gr.Markdown(f"#### Stuck now\nOpen sessions whose current step has had {STUCK_ATTEMPTS} failed "
                        f"attempts or {STUCK_HINTS} hints.")
            stuck = gr.Dataframe(headers=STUCK_COLUMNS, interactive=False, elem_id="stuck")
            gr.Markdown("#### Mastery by skill\nEach learner's estimated chance of knowing a skill "
                        "(from the steps they did themselves).")
            heatmap = gr.Dataframe(interactive=False, elem_id="mastery-heatmap")
            activity = gr.BarPlot(x="day", y="sessions", color="kind", title="Sessions per day (last 30 days)",
                                  height=240, elem_id="activity")
        with gr.Tab("Learners"):
            with gr.Row():
                learner_picker = gr.Dropdown([], label="Learner", elem_id="learner-picker")
                session_picker = gr.Dropdown([], label="Session", elem_id="session-picker")
            learners = gr.Dataframe(headers=LEARNER_COLUMNS, interactive=False, label="Learners",
                                    elem_id="learners")
            transcript = gr.Markdown(NO_TRANSCRIPT, elem_id="transcript", latex_delimiters=[])  # no learner-written TeX
        with gr.Tab("Review turns", elem_id="review-tab"):
            with gr.Row():
                only_learner = gr.Dropdown([], label="Learner", elem_id="filter-learner")
                problem = gr.Textbox(label="Problem id", max_length=40)
                since = gr.Textbox(label="Since (YYYY-MM-DD)", max_length=10)
                version = gr.Textbox(label="Model version", max_length=80)
            with gr.Row():
                thumbs_down = gr.Checkbox(label="Rated down only", elem_id="filter-thumbs")
                failed = gr.Checkbox(label="Failed drafts only")
                unreviewed = gr.Checkbox(label="Not yet reviewed")
                words = gr.Textbox(label="Words in the turn or the learner's message before it", max_length=100,
                                   elem_id="filter-words")
                find = gr.Button("Find turns", variant="primary", elem_id="find-turns")
            turns = gr.Dataframe(headers=TURN_COLUMNS, interactive=False, elem_id="turns", wrap=True,
                                 column_widths=TURN_WIDTHS)
            with gr.Row():
                gr.Markdown("_Click a row to review that turn._")
                csv_link = gr.Markdown(elem_id="turns-csv")
            turn_picker = gr.Dropdown([], label="Turn to review", elem_id="turn-picker")
            context = gr.Markdown(elem_id="turn-context", latex_delimiters=[])
            with gr.Row():
                marks = [gr.Radio(list(MARKS), value="—", label=RUBRIC_LABELS[item], elem_id=f"mark-{item}")
                         for item in RUBRIC]
            with gr.Row():
                move = gr.Dropdown(["—", *MOVES], value="—", label="Correct move tag", elem_id="review-move")
                rewrite = gr.Textbox(label="Rewrite (what the tutor should have said)", lines=2,
                                     max_length=1000, elem_id="rewrite")
            save = gr.Button("Save review", variant="primary", elem_id="save-review")
            saved_note = gr.Markdown(elem_id="review-saved")  # the confirmation, beside the form
        with gr.Tab("Reveal policy"):
            gr.Markdown("When may the tutor give a step's value or the final answer to this class? "
                        "New sessions use it; the deployment's defaults apply until you save one.")
            with gr.Row():
                bottom_out = gr.Number(label="Failed attempts before a step's value", precision=0,
                                       minimum=1, maximum=20)
                final_after = gr.Number(label="Failed attempts on the last step before the answer "
                                        "(empty: never)", precision=0, minimum=1, maximum=20)
                save_policy = gr.Button("Save policy")

        @staff
        def on_load(teacher: User):
            classes = accounts.classes(teacher)
            choices = [(c.name, c.id) for c in classes]
            return gr.update(choices=choices, value=choices[0][1] if len(choices) == 1 else None)

        @staff
        def on_class(teacher: User, class_id: int | None):
            cleared = ([], gr.update(choices=[], value=None))  # another class: its own turns, none picked
            if class_id is None:
                return ([], gr.update(choices=[], value=None), gr.update(choices=[], value=None), None, None, *cleared,
                        *_dashboard(service, None, []))
            members = accounts.members(teacher, int(class_id))
            rows = [_learner_row(service, learner) for learner in members]
            choices = [(m.name, m.id) for m in members]
            chosen = accounts.school_class(teacher, int(class_id)).policy
            policy = RevealPolicy.from_json(chosen) if chosen else service.policy
            return (rows, gr.update(choices=choices, value=None), gr.update(choices=choices, value=None),
                    policy.bottom_out_after, policy.final_answer_after, *cleared,
                    *_dashboard(service, accounts.school_class(teacher, int(class_id)), members))

        filters = [class_picker, only_learner, problem, since, version, thumbs_down, failed, unreviewed, words]

        @staff
        def on_find(teacher: User, class_id, learner_id, problem_id, since_day, model_version, down, failed_only,
                    not_reviewed, text):
            query = TurnQuery.from_form(class_id, learner_id, problem_id, since_day, model_version, down,
                                        failed_only, not_reviewed, text)
            rows = find_turns(service, accounts, teacher, query)
            picker = gr.update(choices=[(f"turn {r['id']} · {r['learner']} · {r['content'][:50]}", r["id"])
                                        for r in rows], value=None)
            return (f"{len(rows)} turns.", turn_table(rows, shortened=True), picker,
                    f"[Download these turns (CSV)]({query.link()})")

        @staff
        def on_turn(teacher: User, message_id: int | None):
            if message_id is None:
                return "", *(["—"] * len(RUBRIC)), "—", "", ""
            message = accounts.readable_message(teacher, int(message_id))  # checks who may read it
            conversation = store.conversation(message.conversation_id, None)
            accounts.audit(teacher, "view_transcript", f"conversation:{conversation.id}")
            before = [m for m in service.transcript(conversation) if m.id <= message.id]
            judged = service.judged_turns(conversation, before, only={m.id for m in before[-5:]})
            shown = "\n".join(_turn(m, judged.get(m.id), under_review=m.id == message.id) for m in before[-5:])
            review = store.review(message.id, teacher)
            marks_now = [_mark(review.marks[item]) if review else "—" for item in RUBRIC]
            return (f"> {as_text(conversation.problem.question)}\n{shown}"
                    f"{_disagreement(judged.get(message.id), review.marks, bool(review.rewrite)) if review else ''}",
                    *marks_now,
                    (review.move if review and review.move else "—"), (review.rewrite or "") if review else "", "")

        @staff
        def on_review(teacher: User, message_id: int | None, correct, socratic, no_leak, encouraging,
                      chosen_move, text, class_id, learner_id, problem_id, since_day, model_version, down,
                      failed_only, not_reviewed, words):
            if message_id is None:
                raise InvalidInput("Choose a turn to review.")
            given = dict(zip(RUBRIC, (correct, socratic, no_leak, encouraging)))
            chosen = {item: MARKS.get(mark) for item, mark in given.items()}
            accounts.review(teacher, int(message_id), chosen,
                            move=None if chosen_move in (None, "—") else chosen_move, rewrite=text)
            message = accounts.readable_message(teacher, int(message_id))
            conversation = store.conversation(message.conversation_id, None)
            judged = service.judged_turns(conversation, only={message.id}).get(message.id)
            saved = (f"Saved your review of turn {int(message_id)}."
                     + _disagreement(judged, chosen, bool(text and text.strip())))
            if class_id is None:  # no class chosen: no table to refresh
                return saved, gr.update(), saved
            rows = find_turns(service, accounts, teacher, TurnQuery.from_form(
                class_id, learner_id, problem_id, since_day, model_version, down, failed_only, not_reviewed, words))
            return saved, turn_table(rows, shortened=True), saved

        @staff
        def on_turn_row(teacher: User, data: gr.SelectData):
            """A click on a row of the turns table picks that turn (its first cell is the turn's id)."""
            row = data.row_value if data.row_value else None
            if not row:
                return gr.skip()
            return int(row[0])

        @staff
        def on_policy(teacher: User, class_id: int | None, steps: float | None, final: float | None):
            if class_id is None:
                raise InvalidInput("Choose a class first.")
            if not steps:
                raise InvalidInput("Say after how many failed attempts a step's value may be given.")
            policy = RevealPolicy(int(steps), int(final) if final else None)
            school_class = accounts.set_class_policy(teacher, int(class_id), policy)
            never = "never" if policy.final_answer_after is None else f"after {policy.final_answer_after}"
            return (f"{school_class.name}: a step's value after {policy.bottom_out_after} failed attempts; "
                    f"the final answer {never}.")

        @staff
        def on_learner(teacher: User, learner_id: int | None):
            if learner_id is None:
                return gr.update(choices=[], value=None)
            conversations = accounts.learner_conversations(teacher, int(learner_id))
            return gr.update(choices=[(f"{c.created[:16].replace('T', ' ')} · {STATUS.get(c.status, c.status)} · "
                                       f"{shorten(c.problem.question, 70)}", c.id) for c in conversations], value=None)

        @staff
        def on_session(teacher: User, conversation_id: int | None):
            if conversation_id is None:
                return NO_TRANSCRIPT
            conversation = accounts.readable_conversation(teacher, int(conversation_id))
            accounts.audit(teacher, "view_transcript", f"conversation:{conversation.id}")
            learner = store.user(conversation.user_id)
            header = (f"### {as_text(learner.name)} · problem {as_text(conversation.problem.id)} · "
                      f"{conversation.status}\n> {as_text(conversation.problem.question)}\n")
            transcript = service.transcript(conversation)
            judged = service.judged_turns(conversation, transcript)
            return header + "\n".join(_turn(m, judged.get(m.id)) for m in transcript)

        page.load(on_load, None, class_picker, api_visibility="private")
        class_picker.change(on_class, class_picker,
                            [learners, learner_picker, only_learner, bottom_out, final_after, turns, turn_picker,
                             stuck, heatmap, activity],
                            api_name="class_learners")
        find.click(on_find, filters, [result, turns, turn_picker, csv_link], api_name="find_turns")
        turn_picker.change(on_turn, turn_picker, [context, *marks, move, rewrite, saved_note], api_name="turn")
        save.click(on_review, [turn_picker, *marks, move, rewrite, *filters], [result, turns, saved_note],
                   api_name="review")
        turns.select(on_turn_row, None, turn_picker, api_visibility="private")
        save_policy.click(on_policy, [class_picker, bottom_out, final_after], result, api_name="class_policy")
        learner_picker.change(on_learner, learner_picker, session_picker, api_name="learner_sessions")
        session_picker.change(on_session, session_picker, transcript, api_name="transcript")
    return page


@dataclass(frozen=True)
class TurnQuery:
    """The review tab's filters: what the page shows and what its CSV link downloads."""

    class_id: int
    learner_id: int | None = None
    problem_id: str | None = None
    since: str | None = None  # a day, YYYY-MM-DD
    model_version: str | None = None
    thumbs_down: bool = False
    draft_failed: bool = False
    unreviewed: bool = False
    words: str | None = None

    @classmethod
    def from_form(cls, class_id, learner_id=None, problem_id=None, since=None, model_version=None,
                  thumbs_down=False, draft_failed=False, unreviewed=False, words=None) -> TurnQuery:
        if class_id in (None, ""):
            raise InvalidInput("Choose a class first.")
        try:
            return cls(int(class_id), int(learner_id) if learner_id not in (None, "") else None,
                       (problem_id or "").strip() or None, parse_day(since), (model_version or "").strip() or None,
                       bool(thumbs_down), bool(draft_failed), bool(unreviewed), (words or "").strip() or None)
        except (TypeError, ValueError):
            raise InvalidInput("A class and a learner are given by their numbers.") from None

    @classmethod
    def from_link(cls, params: Mapping[str, str]) -> TurnQuery:
        """The query a CSV link names (see `link`)."""
        flags = {name: params.get(name) == "1" for name in ("thumbs_down", "draft_failed", "unreviewed")}
        return cls.from_form(params.get("class_id"), params.get("learner_id"), params.get("problem_id"),
                             params.get("since"), params.get("model_version"), words=params.get("words"), **flags)

    def link(self) -> str:
        given = {name: int(value) if isinstance(value, bool) else value
                 for name, value in asdict(self).items() if value not in (None, False)}
        return f"{TURNS_CSV}?{urlencode(given)}"


def find_turns(service: TutorService, accounts: AccountService, teacher: User, query: TurnQuery) -> list[dict]:
    """The tutor turns of a teacher's class the query finds, newest first, each with its judge score."""
    school_class = accounts.school_class(teacher, query.class_id)  # NotFound: not this teacher's class
    rows = service.store.tutor_turns(
        school_class.id, learner_id=query.learner_id, problem_id=query.problem_id, since=query.since,
        model_version=query.model_version, thumbs_down=query.thumbs_down, draft_failed=query.draft_failed,
        unreviewed=query.unreviewed, text=query.words)
    scores = _judge_scores(service, rows)
    return [r | {"judge": scores.get(r["id"], "—")} for r in rows]


def turn_table(rows: list[dict], shortened: bool = False) -> list[list]:
    """The turns as TURN_COLUMNS rows; `shortened`: the tutor's words cut for the page's table."""
    return [[r["id"], r["learner"], r["problem_id"], r["created"][:16].replace("T", " "),
             r["model_version"] or "", r["move"] or "", RATED.get(r["thumbs"], ""), r["comment"] or "",
             "yes" if r["draft_passed"] == 0 else "", "yes" if r["reviewed"] else "", r["judge"],
             shorten(r["content"], 120) if shortened else r["content"]] for r in rows]


def _dashboard(service: TutorService, school_class, members: list[User]) -> tuple:
    """The class dashboard: who is stuck now, the learners × skills mastery heatmap, sessions per day."""
    import pandas as pd

    if school_class is None:
        return [], pd.DataFrame(), pd.DataFrame(columns=["day", "sessions", "kind"])
    stuck = [[s.learner, shorten(s.conversation.problem.question, 60), f"{s.step} of {s.steps}", s.attempts,
              s.hint_level, s.conversation.updated[:16].replace("T", " ")] for s in service.stuck(members)]
    estimates = pd.DataFrame(service.store.class_mastery(school_class), columns=["learner", "skill", "p_known"])
    table = estimates.pivot(index="learner", columns="skill", values="p_known").reset_index() if len(estimates) \
        else pd.DataFrame({"learner": [m.name for m in members]})
    heatmap = table.style.format(lambda v: f"{v:.0%}" if isinstance(v, float) and v == v else "—",
                                 subset=table.columns[1:]).map(_heat, subset=table.columns[1:])
    days = service.store.class_activity(school_class)
    activity = pd.DataFrame([{"day": d["day"], "sessions": d[kind], "kind": kind}
                             for d in days for kind in ("started", "solved")], columns=["day", "sessions", "kind"])
    return stuck, heatmap, activity


def _heat(value) -> str:
    """A cell's colour by mastery, with text dark enough to read on it; no estimate: none."""
    if not isinstance(value, float) or value != value:
        return ""
    red, green = (220, 38, 38), (22, 163, 74)
    mixed = [round(r + (g - r) * value) for r, g in zip(red, green)]
    return f"background-color: rgba({mixed[0]}, {mixed[1]}, {mixed[2]}, 0.35)"


def parse_day(text: str | None) -> str | None:
    text = (text or "").strip()
    if not text:
        return None
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidInput("Write the date as YYYY-MM-DD, e.g. 2026-11-23.") from None


def _mark(value: bool | None) -> str:
    return next(label for label, mark in MARKS.items() if mark is value)


def _learner_row(service: TutorService, learner: User) -> list:
    conversations = service.sessions(learner)
    mastery = service.store.mastery(learner)
    mean = sum(p for p, _ in mastery.values()) / len(mastery) if mastery else None
    messages = sum(1 for c in conversations for m in service.transcript(c) if m.role == LEARNER_ROLE)
    return [learner.name, len(conversations), sum(c.status == "solved" for c in conversations),
            messages, f"{mean:.0%}" if mean is not None else "—",
            conversations[0].updated[:16].replace("T", " ") if conversations else "—"]


def _judge_scores(service: TutorService, rows: list[dict]) -> dict[int, str]:
    """Each found turn's judge score, read in its conversation."""
    scores: dict[int, str] = {}
    for conversation_id in {r["conversation_id"] for r in rows}:
        conversation = service.store.conversation(conversation_id, None)
        found = {r["id"] for r in rows if r["conversation_id"] == conversation_id}
        for message_id, judgement in service.judged_turns(conversation, only=found).items():
            scores[message_id] = f"{judgement.score:.2f}"
    return scores


def _disagreement(judgement, marks: dict[str, bool | None], rewritten: bool) -> str:
    """A teacher's review set beside the judge's reading of the turn."""
    said = judgement.disagreements(marks, rewritten) if judgement is not None else []
    if not said:
        return ""
    return ("\n\n**Your review disagrees with the judge** (" + html.escape("; ".join(said)) +
            "). Your review is training data for the judge's next version.")


def as_text(text: str) -> str:
    """Written text for a Markdown component, shown exactly as typed: each character that could
    be markup becomes an HTML character reference, which Markdown shows and never parses."""
    return MARKUP.sub(lambda match: f"&#{ord(match.group())};", text).replace("\n", "  \n")


def _turn(message: Message, judgement=None, under_review: bool = False) -> str:
    text = as_text(message.content)
    if under_review:  # marked in its context
        text = f"<mark id=\"under-review\">{text}</mark> <small>(under review)</small>"
    if message.role == LEARNER_ROLE:
        return f"\n**Learner:** {text}\n"
    state = message.planner_state or {}
    details = [f"move `{message.move or '—'}`", f"hint level {message.hint_level}",
               f"model `{message.model_version}`"]
    if state.get("learner_state"):
        details.append(f"learner {state['learner_state']}")
    guard = state.get("guard") or {}
    failed = ""
    if guard.get("draft") and not guard.get("passed", True):
        failed = (f"\n> _draft not sent ({as_text('; '.join(guard.get('reasons', [])))}):_ "
                  f"{as_text(guard['draft'])}")
    judged = f"  \n<small class=\"judged\">{html.escape(judgement.summary())}</small>" if judgement else ""
    return f"\n**Tutor:** {text}  \n<small>{' · '.join(details)}</small>{judged}{failed}\n"
