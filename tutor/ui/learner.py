"""The learner page: pick or paste a problem, chat with the tutor, rate its turns.

The tutor opens each session with a line quoting the question (shown, not stored: it is the same
for every learner and no model wrote it); the chat's assistant messages are that line, then the
stored tutor turns."""

from __future__ import annotations

import html
import logging

import gradio as gr

from tutor.accounts import ROLES, AccountService
from tutor.domain.hints import opening_line
from tutor.domain.learner_input import MAX_MESSAGE_CHARS, MAX_PROBLEM_CHARS
from tutor.errors import InvalidInput, NotFound
from tutor.service import (LEARNER_ROLE, MAX_COMMENT_CHARS, THUMBS_DOWN, THUMBS_UP, Progress,
                           TutorService)
from tutor.storage.store import Conversation, Message, User
from tutor.ui.access import UNEXPECTED, allow
from tutor.ui.navigation import navigation_bar

log = logging.getLogger(__name__)

# A single `$` is not a delimiter: word problems are full of dollar amounts.
LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]
NO_SESSION = "Choose or paste a problem first, then start a session."
OWN_EXPORT = "/learn/my-sessions"  # .json and .txt: the learner's own sessions (tutor.ui.web)
NO_PROGRESS = "### Progress\n_Start a problem to see your progress._"
OPEN_SESSION_KEY = "tutor-open-session"  # the browser keeps the open session's id here, for a reload
STATUS = {"active": "in progress", "solved": "solved", "purged": "transcript deleted"}
# the chat first on a phone, the sidebar on its left on a wider screen; no button that empties
# the chat (a cleared chat comes back: chat.clear reopens the session)
CSS = ("@media (min-width: 900px) { #sidebar { order: -1; } } "
       "#chat button[aria-label='Clear'] { display: none; }")
EXPLAIN_MODE = ("\n\n> **Explain mode:** there is no checked worked solution for this problem, so "
                "I can't tell you whether a final answer is right. Explain each step you take and "
                "I'll check the arithmetic you write.")


def build_learner_page(service: TutorService, accounts: AccountService) -> gr.Blocks:
    """Everyone who logs in can be tutored; each works in their own sessions only."""
    problem_choices = [(f"{p.id} · {shorten(p.question, 90)}", p.id) for p in service.bank]
    anyone = allow(accounts, *ROLES)

    with gr.Blocks(title="Socratic tutor") as page:  # its CSS is given where it is mounted
        conversation_id = gr.State(None)
        disliked = gr.State(None)  # the transcript index of the turn a 👎 was just given to
        open_session = gr.BrowserState(None, storage_key=OPEN_SESSION_KEY)
        navigation_bar(page, accounts, "learn")
        gr.Markdown("# Socratic tutor\nWork through a math problem step by step. "
                    "The tutor asks questions instead of giving answers.")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                problem_view = gr.Markdown(
                    "_No problem yet: choose one below or on the left._",
                    latex_delimiters=LATEX_DELIMITERS, elem_id="problem",
                )
                chat = gr.Chatbot(
                    label="Tutor", show_label=False, height=460, latex_delimiters=LATEX_DELIMITERS,
                    feedback_options=("Like", "Dislike"), elem_id="chat", buttons=["copy"],
                    group_consecutive_messages=False,  # each turn its own bubble, rated on its own
                    placeholder="Start a session, then tell the tutor how you would begin.",
                )
                with gr.Row(visible=False, elem_id="dislike-comment") as comment_row:
                    comment = gr.Textbox(scale=5, show_label=False, max_length=MAX_COMMENT_CHARS,
                                         placeholder="What was wrong with that reply? (optional)")
                    send_comment = gr.Button("Send comment", scale=1)
                    skip_comment = gr.Button("No thanks", scale=1)
                with gr.Row():
                    message = gr.Textbox(
                        scale=5, show_label=False, max_length=MAX_MESSAGE_CHARS, autofocus=True,
                        placeholder="Your answer, a step, or a question…", elem_id="message",
                    )
                    send = gr.Button("Send", scale=1, variant="primary")
                    stop = gr.Button("Stop", scale=1, variant="stop", visible=False, elem_id="stop")
                with gr.Row():
                    hint = gr.Button("Hint", size="md", elem_id="hint")
                    another_way = gr.Button("Say it another way", size="md", elem_id="another-way")
            with gr.Column(scale=1, min_width=300, elem_id="sidebar"):
                problem_picker = gr.Dropdown(
                    problem_choices, value=None, label="Choose a problem (type to search)",
                    filterable=True, num_choices_shown=len(problem_choices) or None,  # all, not the first 100
                )
                with gr.Row():
                    start_bank = gr.Button("Start this problem", variant="primary", scale=2)
                    find_similar = gr.Button("Find similar", scale=1)
                similar = gr.Radio([], label="Problems like this one", visible=False, elem_id="similar")
                with gr.Accordion("Or paste your own problem", open=False):
                    own_problem = gr.Textbox(
                        lines=4, max_length=MAX_PROBLEM_CHARS, show_label=False,
                        placeholder="Type or paste a word problem…",
                    )
                    start_own = gr.Button("Start with my problem")
                gr.Markdown("### My sessions")
                session_picker = gr.Dropdown(
                    [], value=None, label="Pick up a past session", interactive=True
                )
                new_session = gr.Button("New session")
                gr.Markdown(f"Download my sessions: [JSON]({OWN_EXPORT}.json) · [text]({OWN_EXPORT}.txt)",
                            elem_id="download-sessions")
                progress_view = gr.Markdown(NO_PROGRESS, elem_id="progress", sanitize_html=False)

        # callbacks: plain values in, plain values out; all work is done by the service

        def show(learner: User, conversation: Conversation) -> tuple:
            problem, progress = conversation.problem, service.progress(conversation)
            return (
                conversation.id,
                f"**Problem {problem.id}.** {problem.question}"
                + (EXPLAIN_MODE if not progress.steps else ""),
                _chat(service, conversation),
                gr.update(choices=_session_choices(service, learner), value=conversation.id),
                _progress_markdown(progress),
                conversation.id,
            )

        skip_session = tuple(gr.skip() for _ in range(6))

        @anyone
        def on_start_bank(learner: User, problem_id: str | None):
            if not problem_id:
                raise InvalidInput("Choose a problem from the list first.")
            return show(learner, service.start_bank_session(learner, problem_id))

        @anyone
        def on_start_own(learner: User, text: str):
            return show(learner, service.start_own_session(learner, text))

        @anyone
        def on_open_session(learner: User, session_id: int | None):
            if session_id is None:
                return skip_session
            return show(learner, service.resume_session(learner, int(session_id)))

        @anyone
        def on_find_similar(learner: User, problem_id: str | None, session_id: int | None):
            """Problems like the one picked in the list, else like the current session's."""
            if problem_id:
                source = service.bank.get(problem_id)
            elif session_id is not None:
                source = service.conversation(learner, int(session_id)).problem
            else:
                raise InvalidInput("Choose a problem (or start one) to find similar ones.")
            found = service.similar_problems(source.question, exclude_id=source.id)
            choices = [(f"{p.id} · {shorten(p.question, 70)}", p.id) for p in found]
            return gr.update(choices=choices, value=None, visible=True)

        @anyone
        def on_new_session(learner: User):
            return None, "_No problem yet: choose one below or on the left._", [], gr.update(value=None), NO_PROGRESS, None

        def stream_turn(learner: User, session_id: int | None, start_turn, learner_text: str | None = None):
            """One tutor turn into the chat: the learner's message at once, the reply once it has
            passed its checks and is stored; meanwhile Stop shows and the other buttons wait.
            `learner_text`: what Send took from the message box (None: the box is not touched)."""
            box = gr.skip() if learner_text is None else ""
            if session_id is None:
                raise InvalidInput(NO_SESSION)
            # someone else's conversation: the call fails (gr.Error) before anything is stored
            conversation = service.conversation(learner, int(session_id))
            shown = False  # the learner's message is in the chat
            try:
                replies = start_turn(conversation)  # returns once the message is stored; bad text: InvalidInput
                history = _chat(service, conversation)["value"]
                yield history, box, *_controls(busy=True), gr.skip()
                shown = True
                for reply in replies:  # none when the learner stops it
                    yield history + [{"role": "assistant", "content": reply.text}], box, *_controls(busy=True), gr.skip()
                yield (_chat(service, conversation), box, *_controls(busy=False),
                       _progress_markdown(service.progress(conversation)))
            except InvalidInput as error:
                gr.Warning(str(error))
                if shown:  # the learner's message is stored: the chat shows it, the box stays empty
                    yield _chat(service, conversation), box, *_controls(busy=False), gr.skip()
                else:  # nothing stored: their words go back in the box
                    yield gr.skip(), learner_text if learner_text is not None else box, *_controls(busy=False), gr.skip()
            except Exception:
                log.exception("tutor turn failed")
                gr.Warning(UNEXPECTED)
                yield _chat(service, conversation), gr.skip(), *_controls(busy=False), gr.skip()

        @anyone
        def on_send(learner: User, text: str, session_id: int | None):
            yield from stream_turn(learner, session_id, lambda c: service.reply(c, text),
                                   (text or "").strip())

        @anyone
        def on_hint(learner: User, session_id: int | None):
            yield from stream_turn(learner, session_id, service.hint)

        @anyone
        def on_another_way(learner: User, session_id: int | None):
            yield from stream_turn(learner, session_id, service.say_another_way)

        @anyone
        def on_stop(learner: User, session_id: int | None):
            """The reply being written is dropped; the learner's message stays."""
            if session_id is None:
                return gr.skip(), *_controls(busy=False), gr.skip()
            conversation = service.conversation(learner, int(session_id))
            service.stop(conversation)
            gr.Info("Stopped. Your message is kept: write another, or ask for a hint.")
            return _chat(service, conversation), *_controls(busy=False), _progress_markdown(service.progress(conversation))

        def rate_turn(learner: User, session_id: int | None, message_index: int, liked: bool,
                      comment: str | None = None) -> str:
            if session_id is None:
                raise InvalidInput(NO_SESSION)
            conversation = service.conversation(learner, int(session_id))
            transcript = service.transcript(conversation)
            if message_index == len(transcript):
                raise InvalidInput("The tutor is still writing; rate the reply once it is complete.")
            if not 0 <= int(message_index) < len(transcript):
                raise InvalidInput("That message is not in this session.")
            service.rate(learner, conversation, transcript[int(message_index)].id,
                         THUMBS_UP if liked else THUMBS_DOWN, comment)
            return "thanks"

        @allow(accounts, *ROLES, api_only=True)
        def rate(learner: User, session_id: int | None, message_index: int, liked: bool) -> str:
            """Rate the tutor turn at `message_index` of the chat: 👍 (liked) or 👎."""
            return rate_turn(learner, session_id, message_index, liked)

        @anyone
        def on_like(learner: User, session_id: int | None, data: gr.LikeData):
            index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
            if int(index) == 0:
                raise InvalidInput("Rate the tutor's replies; its opening line is the same for everyone.")
            liked = data.liked in (True, "Like")
            rate_turn(learner, session_id, int(index) - 1, liked)  # the chat opens with the opening line
            # a 👎 asks, once, what was wrong
            return (None, gr.update(visible=False)) if liked else (int(index) - 1, gr.update(visible=True))

        @anyone
        def on_skip_comment(learner: User):
            return None, gr.update(visible=False), ""

        @anyone
        def on_comment(learner: User, session_id: int | None, message_index: int | None, text: str):
            if message_index is None:
                return None, gr.update(visible=False), ""
            rate_turn(learner, session_id, int(message_index), False, text)
            gr.Info("Thanks: your teacher reads this beside the reply.")
            return None, gr.update(visible=False), ""

        @anyone
        def on_load(learner: User, kept_session: int | None):
            """The session open before a reload, if the browser kept one and it is this learner's."""
            if kept_session is not None:
                try:
                    return show(learner, service.resume_session(learner, int(kept_session)))
                except (NotFound, ValueError, TypeError):
                    pass  # another user's, or gone: start afresh
            return None, gr.skip(), gr.skip(), gr.update(choices=_session_choices(service, learner)), gr.skip(), None

        session_outputs = [conversation_id, problem_view, chat, session_picker, progress_view, open_session]
        controls = [send, stop, hint, another_way]
        turn_outputs = [chat, message, *controls, progress_view]
        start_bank.click(on_start_bank, problem_picker, session_outputs, api_name="start_problem")
        start_own.click(on_start_own, own_problem, session_outputs, api_name="start_own_problem")
        session_picker.input(on_open_session, session_picker, session_outputs, api_name="open_session")
        new_session.click(on_new_session, None, session_outputs, api_visibility="private")
        turns = [
            gr.on([message.submit, send.click], on_send, [message, conversation_id], turn_outputs, api_name="send"),
            hint.click(on_hint, conversation_id, turn_outputs, api_name="hint"),
            another_way.click(on_another_way, conversation_id, turn_outputs, api_name="say_another_way"),
        ]
        stop.click(on_stop, conversation_id, [chat, *controls, progress_view], cancels=turns, api_name="stop")
        find_similar.click(on_find_similar, [problem_picker, conversation_id], similar,
                           api_name="find_similar")
        similar.input(anyone(lambda learner, problem_id: problem_id), similar, problem_picker,
                      api_visibility="private")
        chat.like(on_like, conversation_id, [disliked, comment_row], api_visibility="private")
        send_comment.click(on_comment, [conversation_id, disliked, comment], [disliked, comment_row, comment],
                           api_name="comment_dislike")
        skip_comment.click(on_skip_comment, None, [disliked, comment_row, comment], api_visibility="private")
        chat.clear(on_open_session, conversation_id, session_outputs, api_visibility="private")
        gr.api(rate, api_name="rate")
        page.load(on_load, open_session, session_outputs, api_visibility="private")
    return page


def _controls(busy: bool) -> tuple:
    """Send, Stop, Hint and "Say it another way": while a reply is written, Stop shows and the
    others wait."""
    waiting = gr.update(interactive=not busy)
    return waiting, gr.update(visible=busy), waiting, waiting


def _chat(service: TutorService, conversation: Conversation) -> dict:
    """The chat of a session: the tutor's opening line, then the transcript, each tutor turn
    showing the learner's own 👍/👎."""
    transcript = service.transcript(conversation)
    thumbs = service.store.thumbs(conversation)
    history = [{"role": "assistant", "content": opening_line(conversation.problem.question)}]
    history += _chat_history(transcript)
    given = {THUMBS_UP: "Like", THUMBS_DOWN: "Dislike"}
    return gr.update(value=history, feedback_value=[None] + [
        given.get(thumbs.get(m.id)) for m in transcript if m.role != LEARNER_ROLE])


def _progress_markdown(progress: Progress) -> str:
    lines = ["### Progress"]
    if progress.solved:
        lines.append("**Solved!** Pick another problem when you're ready.")
    elif progress.steps:
        lines.append(f"Step {min(progress.step + 1, progress.steps)} of {progress.steps} "
                     f"({progress.step} done)")
    else:
        lines.append("Explain mode: no worked solution to follow.")
    if progress.mastery:
        lines.append("\n**Mastery by skill**\n")
        for skill, p_known in sorted(progress.mastery.items(), key=lambda item: -item[1]):
            percent = round(p_known * 100)
            name = html.escape(skill)
            # a progress element a screen reader announces as "division: 89 percent"
            lines.append(f'<progress value="{percent}" max="100" aria-label="{name}"></progress> '
                         f"{percent}% {name}  ")
    return "\n".join(lines)


def _chat_history(transcript: list[Message]) -> list[dict]:
    return [
        {"role": "user" if m.role == LEARNER_ROLE else "assistant", "content": m.content}
        for m in transcript
    ]


def _session_choices(service: TutorService, learner: User) -> list[tuple[str, int]]:
    return [
        (f"{STATUS.get(c.status, c.status)} · {c.created[:16].replace('T', ' ')} · "
         f"{shorten(c.problem.question, 60)}", c.id)
        for c in service.sessions(learner)
    ]


def transcripts_as_text(sessions: list[dict]) -> str:
    """A learner's sessions (as exported) as a text file anyone can read."""
    parts = []
    for session in sessions:
        lines = [f"Problem {session['problem_id']} ({STATUS.get(session['status'], session['status'])}, "
                 f"started {session['created'][:16].replace('T', ' ')})", session["problem"], ""]
        lines += [f"{'You' if m['role'] == LEARNER_ROLE else 'Tutor'}: {m['content']}" for m in session["messages"]]
        parts.append("\n".join(lines))
    return ("\n\n" + "-" * 40 + "\n\n").join(parts) + "\n"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
