"""The teacher page: your classes, their learners, and each session's transcript (read-only)."""

from __future__ import annotations

import html

import gradio as gr

from tutor.accounts import STAFF, AccountService
from tutor.service import LEARNER_ROLE, TutorService
from tutor.storage.store import Message, User
from tutor.ui.access import allow
from tutor.ui.navigation import navigation_bar

LEARNER_COLUMNS = ["learner", "sessions", "solved", "learner messages", "mean mastery", "last active"]
NO_TRANSCRIPT = "_Pick a class, a learner and a session._"


def build_teacher_page(service: TutorService, accounts: AccountService) -> gr.Blocks:
    staff = allow(accounts, *STAFF)
    store = service.store

    with gr.Blocks(title="Socratic tutor · teacher") as page:
        navigation_bar(page, accounts, "teach")
        gr.Markdown("# Your classes\nRead how the tutor worked with your learners. "
                    "Transcripts are read-only for now.")
        with gr.Row():
            class_picker = gr.Dropdown([], label="Class", elem_id="class-picker")
            learner_picker = gr.Dropdown([], label="Learner", elem_id="learner-picker")
            session_picker = gr.Dropdown([], label="Session", elem_id="session-picker")
        learners = gr.Dataframe(headers=LEARNER_COLUMNS, interactive=False, label="Learners",
                                elem_id="learners")
        transcript = gr.Markdown(NO_TRANSCRIPT, elem_id="transcript")

        @staff
        def on_load(teacher: User):
            classes = accounts.classes(teacher)
            choices = [(c.name, c.id) for c in classes]
            return gr.update(choices=choices, value=choices[0][1] if len(choices) == 1 else None)

        @staff
        def on_class(teacher: User, class_id: int | None):
            if class_id is None:
                return [], gr.update(choices=[], value=None)
            members = accounts.members(teacher, int(class_id))
            rows = [_learner_row(service, learner) for learner in members]
            return rows, gr.update(choices=[(m.name, m.id) for m in members], value=None)

        @staff
        def on_learner(teacher: User, learner_id: int | None):
            if learner_id is None:
                return gr.update(choices=[], value=None)
            conversations = accounts.learner_conversations(teacher, int(learner_id))
            return gr.update(choices=[(f"{c.created[:16].replace('T', ' ')} · {c.problem.id} · "
                                       f"{c.status}", c.id) for c in conversations], value=None)

        @staff
        def on_session(teacher: User, conversation_id: int | None):
            if conversation_id is None:
                return NO_TRANSCRIPT
            conversation = accounts.readable_conversation(teacher, int(conversation_id))
            accounts.audit(teacher, "view_transcript", f"conversation:{conversation.id}")
            learner = store.user(conversation.user_id)
            header = (f"### {html.escape(learner.name)} · problem {conversation.problem.id} · "
                      f"{conversation.status}\n> {conversation.problem.question}\n")
            return header + "\n".join(_turn(m) for m in service.transcript(conversation))

        page.load(on_load, None, class_picker, api_visibility="private")
        class_picker.change(on_class, class_picker, [learners, learner_picker], api_name="class_learners")
        learner_picker.change(on_learner, learner_picker, session_picker, api_name="learner_sessions")
        session_picker.change(on_session, session_picker, transcript, api_name="transcript")
    return page


def _learner_row(service: TutorService, learner: User) -> list:
    conversations = service.sessions(learner)
    mastery = service.store.mastery(learner)
    mean = sum(p for p, _ in mastery.values()) / len(mastery) if mastery else None
    messages = sum(1 for c in conversations for m in service.transcript(c) if m.role == LEARNER_ROLE)
    return [learner.name, len(conversations), sum(c.status == "solved" for c in conversations),
            messages, f"{mean:.0%}" if mean is not None else "—",
            conversations[0].updated[:16].replace("T", " ") if conversations else "—"]


def _turn(message: Message) -> str:
    text = html.escape(message.content).replace("\n", "  \n")
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
        failed = (f"\n> _draft not sent ({html.escape('; '.join(guard.get('reasons', [])))}):_ "
                  f"{html.escape(guard['draft'])}")
    return f"\n**Tutor:** {text}  \n<small>{' · '.join(details)}</small>{failed}\n"
