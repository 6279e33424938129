"""TutorService: the one place a tutoring turn is orchestrated (UI and CLI both call it)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator

from tutor.domain import guard, mastery
from tutor.domain.learner_input import MAX_PROBLEM_CHARS, clean_text
from tutor.domain.planner import Move, PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem, ProblemBank
from tutor.domain.solving import solution_request, with_verified_solution
from tutor.config import VOCABULARY_FILE
from tutor.domain.faithfulness import Vocabulary, load_vocabulary
from tutor.domain.prompting import INSTRUCT, MOVES_FORMAT, MOVES_FORMATS, PLANNER_FORMAT, Said, next_turn_start
from tutor.domain.repeats import WORDS, RepeatRule
from tutor.domain.words import plain
from tutor.domain.tutoring import (
    DRAFT_CANDIDATES,
    DRAFT_TRIES,
    HINT_REQUESTED,
    DraftReader,
    Judged,
    TurnPlan,
    learner_label,
    note,
    plan_turn,
    solution_steps,
    turn_prompt,
)
from tutor.errors import InvalidInput, ModelError, NotFound
from tutor.model.backend import Backend, GenerationParams, Output, prompt_format, retry_params
from tutor.judge.data import Exchange, exchange_before
from tutor.model.retrieval import Retrieval
from tutor.storage.store import THUMBS, Conversation, Message, Store, User

if TYPE_CHECKING:
    from tutor.judge.model import Judge, Judgement

log = logging.getLogger(__name__)

LEARNER_ROLE, TUTOR_ROLE = "learner", "tutor"
SOLVE_PARAMS = GenerationParams(max_new_tokens=400, temperature=0)
THUMBS_UP, THUMBS_DOWN = 1, -1
HINT_REQUEST = "Can I have a hint?"
MAX_COMMENT_CHARS = 500  # what a learner says was wrong with a tutor turn
MAX_WORDINGS = 3  # of one tutor turn: the first and two more ways of saying it
PLANNER_VERSION = "planner"  # tutor text written by the planner itself (model draft failed the guard)
# A turn's first draft is greedy, as the evaluation measures it: the student's likeliest words,
# which for a student of the spine format keep closest to the planner's turn; another try is sampled.
FIRST_DRAFT = GenerationParams(temperature=0)


@dataclass(frozen=True)
class TutorReply:
    """A tutor turn as it streams: `text` so far; `message` once it is stored."""

    text: str
    message: Message | None = None


class TurnStopped(Exception):
    """The learner stopped the tutor's reply: none of it is stored."""


@dataclass(frozen=True)
class Progress:
    """What the learner's progress panel shows."""

    step: int  # steps done
    steps: int  # steps in the worked solution (0: the learner's own problem, no solution)
    solved: bool
    mastery: dict[str, float]  # skill -> P(known)


STUCK_ATTEMPTS, STUCK_HINTS = 3, 3  # on one step: a teacher should look


@dataclass(frozen=True)
class Stuck:
    """A learner stuck on a step of an open session (the teacher's dashboard)."""

    learner: str
    conversation: Conversation
    step: int  # 1-based
    steps: int
    attempts: int  # failed attempts on it
    hint_level: int  # highest rung of the hint ladder given on it


class TutorService:
    def __init__(
        self,
        store: Store,
        bank: ProblemBank,
        student: Backend,
        params: GenerationParams = FIRST_DRAFT,
        policy: RevealPolicy = RevealPolicy(),
        retrieval: Retrieval | None = None,
        teacher: Backend | None = None,
        vocabulary: Vocabulary | None = None,
        messages_per_minute: int | None = None,
        draft_tries: int = DRAFT_TRIES,
        repeats: RepeatRule = WORDS,
        judge: Judge | None = None,
        draft_candidates: int = DRAFT_CANDIDATES,
    ):
        self.store = store
        self.bank = bank
        self.student = student
        self.params = params
        self.policy = policy  # for new conversations; each keeps the policy it started with
        self.retrieval = retrieval  # exemplars for the model, similar problems for the picker
        self.teacher = teacher  # a stronger model: solves learners' own problems
        # the faithfulness check's words: learned from dialogues/ unless given
        self.vocabulary = vocabulary or load_vocabulary(VOCABULARY_FILE)
        self.messages_per_minute = messages_per_minute  # per learner; None: no limit (CLI, evaluation)
        self.draft_tries = max(1, draft_tries)  # drafts a turn may take before the planner's words
        self.repeats = repeats  # what counts as asking the same question again (by meaning, in the app)
        self.judge = judge  # ranks passing drafts (best of `draft_candidates`); teachers' pages show it
        self.draft_candidates = max(1, draft_candidates)
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._running: dict[int, threading.Event] = {}  # conversation id -> its running turn's stop signal

    # sessions

    def local_learner(self, name: str = "local-learner") -> User:
        """The terminal's learner: a named account without a password (it cannot log in on the web)."""
        return self.store.ensure_user(name)

    def start_bank_session(self, user: User, problem_id: str) -> Conversation:
        return self.start_session(user, self.bank.get(problem_id))

    def start_session(self, user: User, problem: Problem, origin: str = "live") -> Conversation:
        conversation = self.store.start_conversation(user, problem, self.policy_for(user).to_json(), origin)
        self._prepare_next_turn(conversation, [])
        return conversation

    def resume_session(self, user: User, conversation_id: int) -> Conversation:
        """The learner's own conversation, opened again to go on with it."""
        conversation = self.store.conversation(conversation_id, user)
        self._prepare_next_turn(conversation, self.store.messages(conversation))
        return conversation

    def policy_for(self, user: User) -> RevealPolicy:
        """The reveal policy of the learner's class if its teacher set one, else the deployment's."""
        stored = self.store.learner_class_policy(user)
        return RevealPolicy.from_json(stored) if stored else self.policy

    def start_own_session(self, user: User, problem_text: str) -> Conversation:
        """A learner's own problem: with a verified worked solution from the teacher model if
        one is configured and its steps check out; otherwise in explain mode (no solution)."""
        text = clean_text(problem_text, max_chars=MAX_PROBLEM_CHARS, what="problem")
        problem = Problem.from_learner_text(text)
        stored = self.store.problem(problem.id)
        if stored is not None and stored.solution:
            problem = stored  # solved and verified before: no need to ask again
        elif self.teacher is not None:
            try:
                answer = "".join(self.teacher.generate(solution_request(problem), SOLVE_PARAMS))
            except ModelError:
                log.warning("the teacher could not solve problem %s; explain mode", problem.id)
            else:
                problem = with_verified_solution(problem, answer) or problem
        return self.start_session(user, problem)

    def conversation(self, user: User, conversation_id: int) -> Conversation:
        return self.store.conversation(conversation_id, user)

    def sessions(self, user: User) -> list[Conversation]:
        return self.store.conversations(user)

    def transcript(self, conversation: Conversation) -> list[Message]:
        return self.store.messages(conversation)

    def judged_turns(self, conversation: Conversation, transcript: list[Message] | None = None,
                     only: set[int] | None = None) -> dict[int, Judgement]:
        """The judge's reading of each tutor turn of a conversation (or of the turns `only`
        names), by message id; none without a judge, or if it fails: the page shows the turns
        without it."""
        if self.judge is None:
            return {}
        transcript = transcript if transcript is not None else self.transcript(conversation)
        turns = [message for message in transcript
                 if message.role == TUTOR_ROLE and (only is None or message.id in only)]
        try:
            judged = self.judge.score_many([(exchange_before(conversation.problem, transcript, message.id),
                                             message.content) for message in turns])
        except ModelError:
            log.exception("the judge failed; turns shown without it")
            return {}
        return {message.id: judgement for message, judgement in zip(turns, judged)}

    def progress(self, conversation: Conversation) -> Progress:
        state = _planner_state(self.store.messages(conversation))
        user = self.store.user(conversation.user_id)
        return Progress(
            step=len(state.completed),
            steps=len(solution_steps(conversation.problem)),
            solved=state.solved,
            mastery={skill: p for skill, (p, _) in self.store.mastery(user).items()},
        )

    def similar_problems(self, problem_text: str, exclude_id: str | None = None, k: int = 5) -> list[Problem]:
        """Bank problems most like this text (a bank problem's question, or a pasted one)."""
        if self.retrieval is None:
            raise ModelError("Finding similar problems needs the retrieval index, which is off.")
        return self.retrieval.similar_problems(problem_text, k, exclude_id)

    # the turn

    def reply(self, conversation: Conversation, text: str) -> Iterator[TutorReply]:
        """Store the learner's message, then stream and store the tutor's answer to it: returns
        once the message is stored (bad input raises InvalidInput, and nothing is stored); the
        answer comes as the returned iterator is read. The conversation's turn lock is held from
        the call until the iterator is read to its end or closed: read (or close) one turn's
        iterator before asking for the next turn of the same conversation in the same thread.
        """
        text = clean_text(text)
        return self._turn(conversation, text)

    def hint(self, conversation: Conversation) -> Iterator[TutorReply]:
        """The learner asks for the next rung of the hint ladder."""
        return self._turn(conversation, None)

    def say_another_way(self, conversation: Conversation) -> Iterator[TutorReply]:
        """The tutor's last turn said another way: a fresh, sampled draft of the same planned
        turn (in other words than every wording so far), stored after it. It records that the
        learner turned the earlier wording down: a preference pair for the loop (see
        tutor.training.feedback). Mastery and status do not move again."""
        return self._turn(conversation, None, another_way=True)

    def stop(self, conversation: Conversation, wait: float = 5.0) -> None:
        """Stop the conversation's running turn, if one runs: the learner's message stays, the
        tutor's reply is dropped. Returns once that turn has ended (at most `wait` seconds)."""
        signal = self._running.get(conversation.id)
        if signal is None:
            return
        signal.set()
        lock = self._conversation_lock(conversation.id)
        if lock.acquire(timeout=wait):
            lock.release()

    def _turn(self, conversation: Conversation, text: str | None, another_way: bool = False) -> Iterator[TutorReply]:
        turn = self._run_turn(conversation, text, another_way)
        next(turn)  # up to the learner's message, stored: a page that shows it has it kept
        return turn

    def _run_turn(self, conversation: Conversation, text: str | None, another_way: bool) -> Iterator[TutorReply | None]:
        # One turn at a time per conversation (a double click, Send and Hint, two tabs): each
        # turn starts from the planner state the previous one stored.
        with self._conversation_lock(conversation.id):
            stop = self._running[conversation.id] = threading.Event()
            try:
                if another_way:
                    yield from self._another_way(conversation, stop)
                else:
                    yield from self._locked_turn(conversation, text, stop)
            except TurnStopped:
                return  # the learner's message stays; nothing else was stored
            finally:
                self._running.pop(conversation.id, None)

    def _conversation_lock(self, conversation_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(conversation_id, threading.Lock())

    def _locked_turn(self, conversation: Conversation, text: str | None, stop: threading.Event) -> Iterator[TutorReply]:
        self._check_rate(conversation)
        # committed before the reply starts: a learner's message survives a crash mid-reply
        self.store.append_message(conversation, LEARNER_ROLE, text if text is not None else HINT_REQUEST)
        yield None  # stored
        yield from self._answer(conversation, self.store.messages(conversation), text, stop)

    def _another_way(self, conversation: Conversation, stop: threading.Event) -> Iterator[TutorReply]:
        transcript = self.store.messages(conversation)
        wordings = []  # the last tutor turn and the wordings of it asked for before
        while transcript and transcript[-1].role == TUTOR_ROLE:
            wordings.append(transcript.pop())
        if not wordings or not transcript or not wordings[-1].planner_state:
            raise InvalidInput("There is no reply of the tutor's to say another way yet.")
        if len(wordings) >= MAX_WORDINGS:
            raise InvalidInput("That is all the ways I have for this one. Ask for a hint, or say which part is unclear.")
        self._check_rate(conversation)
        yield None  # nothing of the learner's to store: the request is taken
        # planned again from what the first wording was planned from: the same turn
        hint = wordings[-1].planner_state.get("learner_state") == HINT_REQUESTED
        yield from self._answer(conversation, transcript, None if hint else transcript[-1].content, stop,
                                said_before=wordings)

    def _answer(self, conversation: Conversation, transcript: list[Message], text: str | None,
                stop: threading.Event, said_before: list[Message] = ()) -> Iterator[TutorReply]:
        """Plan, draft and store the tutor's answer to the transcript's last learner message
        (`text`; None: a hint request). `said_before`: this same turn's wordings the learner
        asked to hear another way (newest first): the drafts are sampled and must differ."""
        before = _planner_state(transcript)
        policy = RevealPolicy.from_json(conversation.policy)
        recent = [message.content for message in transcript if message.role == TUTOR_ROLE][-2:]
        turn = plan_turn(conversation.problem, before, text, policy, hint_requested=text is None, recent=recent,
                         repeats=self.repeats)

        started = time.perf_counter()
        student = self.student  # an admin may promote another version while this turn runs
        form = prompt_format(student)
        exemplars = (
            self.retrieval.exemplars_for(turn.move.move, f"{text or ''} {turn.planned_text}")
            if self.retrieval and form == INSTRUCT else []
        )
        prompt = turn_prompt(conversation.problem, turn, _history(transcript, conversation.problem, form),
                             exemplars=exemplars, prompt_format=form, hint_requested=text is None,
                             vocabulary=self.vocabulary, repeats=self.repeats)
        reader = DraftReader(turn, prompt, tuple(m.content for m in said_before))
        first_try = 1 if said_before else 0  # another way: sampled from the first draft on
        params = self._try_params(reader, first_try)  # the first draft's, stored with the turn
        output, tries, ranking = "", [], None
        if form == PLANNER_FORMAT:
            judged = Judged(turn.planned_text, turn.move.move, guard.GuardResult(), "")
        else:
            judged, output, tries, ranking = self._draft(
                student, reader, exchange_before(conversation.problem, transcript), stop, first_try)
        final_text, move, failure = judged.text, judged.move, judged.verdict
        if stop.is_set():
            raise TurnStopped
        if said_before and plain(final_text) in {plain(m.content) for m in said_before}:
            raise InvalidInput("That is the clearest way I can put it. Ask for a hint, or say which part is unclear.")
        # the model wrote the turn, or the planner did
        version = student.version if failure.ok else PLANNER_VERSION
        message = self.store.append_message(
            conversation,
            TUTOR_ROLE,
            final_text,
            model_version=version,
            move=move,
            hint_level=turn.move.hint_level,
            planner_state={
                "planner": turn.state.to_json(),
                "move": turn.move.to_json(),
                "learner_state": learner_label(turn),
                "planned_text": turn.planned_text,
                "exemplars": exemplars,
                # exactly what the student was asked (the last message is its reply's forced
                # start in the moves format) and what it wrote: feedback datasets are built on it
                "prompt": {"format": form, "messages": [{"role": m.role, "content": m.content}
                                                        for m in prompt.messages]},
                "guard": {
                    "passed": failure.ok,
                    "reasons": list(failure.reasons),
                    "leaked_final": failure.leaked_final,
                    "draft": judged.draft,
                    "draft_model_version": student.version,
                    "output": output,
                    # the drafts tried before it, each failed: the whole reply after the prompt's start
                    "tries": tries,
                },
                # passing drafts the judge ranked, and the one it chose (best of several)
                **({"ranking": ranking} if ranking else {}),
                # the learner asked for the turn before it said another way
                **({"another_way_of": said_before[0].id} if said_before else {}),
            },
            generation_params=params.to_json(),
            latency_ms=round((time.perf_counter() - started) * 1000),
        )
        # Mastery and status follow the stored turn, so a turn that never completes counts for nothing.
        if not said_before:
            self._record_mastery(conversation, before, turn)
        if turn.state.solved and not before.solved:
            self.store.set_status(conversation, "solved")
        self._prepare_next_turn(conversation, transcript + [message])
        yield TutorReply(final_text, message)

    def _prepare_next_turn(self, conversation: Conversation, transcript: list[Message]) -> None:
        """Let the student model read the start of the next turn's prompt (the problem and the
        recent turns) while the learner reads and writes, where its engine can keep that state:
        the learner's next message then waits only for what it adds."""
        prepare, form = getattr(self.student, "prepare", None), prompt_format(self.student)
        if prepare is None or form not in MOVES_FORMATS or _planner_state(transcript).solved:
            return
        problem = conversation.problem
        prepare(next_turn_start(problem, [step.expression for step in solution_steps(problem)],
                                _history(transcript, problem, form)))

    def _check_rate(self, conversation: Conversation) -> None:
        if self.messages_per_minute is None:
            return
        since = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(timespec="microseconds")
        if self.store.learner_requests_since(self.store.user(conversation.user_id), since) >= self.messages_per_minute:
            raise InvalidInput(f"That is more than {self.messages_per_minute} messages a minute. "
                               "Take a breath, then send it again.")

    def _draft(self, student: Backend, reader: DraftReader, exchange: Exchange, stop: threading.Event,
               first_try: int = 0) -> tuple[Judged, str, list[dict], dict | None]:
        """The student's drafts, read as they stream: the learner sees a draft only once the whole
        of it has passed. A failed draft is tried again afresh, sampled (`next_try`), up to
        `draft_tries` drafts, before the planner's own turn goes out. While the engine has no
        other learner's reply to decode, the next try decodes beside the current one (a spare),
        so a draft that fails costs the learner little wait; and such an engine, which queues its
        learners' replies, takes each try in the turn's place.

        With a judge and `draft_candidates` K > 1, a passing draft is not sent at once: up to K
        passing drafts are gathered and the judge's best goes out. On the serving engine the
        further candidates are spares only, so under load (no spare) the first passing draft is
        sent unranked and no learner waits for another's candidates.

        `stop` set (the learner stopped the reply) ends the drafting: TurnStopped. `first_try`: the
        try the first draft is (1: sampled, for another way of saying a turn).

        Returns the judged turn, the model's raw output (after the prompt's own start), the failed
        tries before it, and the judge's ranking (None where nothing was ranked)."""
        tries: list[dict] = []
        passed: list[tuple[Judged, str]] = []
        wanted = self.draft_candidates if self.judge is not None else 1
        budget = max(self.draft_tries, wanted)  # drafts a turn may take in all
        spare = None  # the next draft's reply, decoding already
        engine = hasattr(student, "generate_if_idle")
        queued = {"since": time.perf_counter()} if engine else {}
        drafts = 0
        try:
            while True:
                if stop.is_set():
                    raise TurnStopped
                if spare is not None:
                    stream, spare = spare, None
                else:
                    stream = student.generate(reader.prompt.messages, self._try_params(reader, first_try + drafts),
                                              **queued)
                drafts += 1
                # a spare is worth decoding if this draft may fail with tries left, or pass with candidates wanted
                wanted_next = (not passed and len(tries) + 1 < self.draft_tries) or len(passed) + 1 < wanted
                if drafts < budget and engine and wanted_next:
                    spare = student.generate_if_idle(reader.prompt.messages,
                                                     self._try_params(reader, first_try + drafts), **queued)
                output = self._stream(stream, reader, stop)
                judged = reader.finish(truncated=output.truncated)
                failed = {"output": output.text, "reasons": list(judged.verdict.reasons)}
                if judged.verdict.ok:
                    passed.append((judged, output.text))
                    # further candidates only as spares of an idle engine: no learner waits for them
                    if len(passed) >= wanted or drafts >= budget or not engine or spare is None:
                        break
                    reader = reader.another()
                elif passed:  # a further candidate failed: on only with a spare decoding already
                    tries.append(failed)
                    if spare is None or drafts >= budget:
                        break
                    reader = reader.another()
                else:
                    again = reader.next_try() if drafts < budget and len(tries) + 1 < self.draft_tries else None
                    if again is None:
                        return judged, output.text, tries, None
                    tries.append(failed)
                    reader = again
        finally:
            _close(spare)
        if len(passed) == 1:
            return passed[0][0], passed[0][1], tries, None
        try:
            scores = self.judge.score_many([(exchange, judged.text) for judged, _ in passed])
        except ModelError:  # the first passing draft is as good a turn as any: it goes out unranked
            log.exception("the judge failed; the first passing draft is sent unranked")
            return passed[0][0], passed[0][1], tries, None
        best = max(range(len(passed)), key=lambda i: scores[i].score)
        ranking = {"judge": self.judge.version, "chosen": best,
                   "candidates": [{"text": judged.text, "score": round(score.score, 4)}
                                  for (judged, _), score in zip(passed, scores)]}
        return passed[best][0], passed[best][1], tries, ranking

    def _try_params(self, reader: DraftReader, attempt: int) -> GenerationParams:
        """The generation settings of a turn's try (0: the first draft)."""
        params = replace(self.params, choices=reader.prompt.first_words, ruled_out=reader.prompt.ruled_out)
        return retry_params(params, attempt) if attempt else params

    def _stream(self, stream: Iterator[str], reader: DraftReader, stop: threading.Event) -> Output:
        """One draft through the reader, until it ends, a sentence fails or the learner stops it
        (TurnStopped); the model's output."""
        text = ""
        try:
            for piece in stream:
                if stop.is_set():
                    raise TurnStopped
                text += piece
                reader.feed(text)
                if reader.stopped:
                    break
        except ModelError:
            # the planner's words are always a safe reply; the learner's turn is not lost
            log.exception("student model failed; answering with the planner's text")
            reader.failure = guard.GuardResult(("the model failed",))
        finally:
            _close(stream)
        return Output(text, getattr(stream, "truncated", False))

    def _record_mastery(self, conversation: Conversation, before: PlannerState, turn: TurnPlan) -> None:
        """One BKT observation for the step the learner did, when it is done: right first time
        without hints, or not (a bottom-out: the tutor did it). Steps a later value skipped over
        are done, but nobody did them: no observation, so a final answer alone does not make
        every skill of the problem look mastered."""
        steps = solution_steps(conversation.problem)
        newly_done = [i for i in turn.state.completed if i not in before.completed]
        if not newly_done:
            return
        index = newly_done[-1]  # the step whose value this turn gave; those before it were skipped
        skill = steps[index].skill
        first_time = index != before.step or (before.attempts == 0 and before.hint_level == 0)
        right = turn.move.intent != "bottom_out" and first_time
        user = self.store.user(conversation.user_id)
        with self.store.transaction():  # read-modify-write: no lost update from another session
            p_known, observations = self.store.mastery(user).get(skill, (mastery.DEFAULT_BKT.prior, 0))
            self.store.set_mastery(user, skill, mastery.update(p_known, right), observations + 1)

    # the served version

    def use_adapter(self, adapter) -> None:
        """Serve another registered version (a LoRA adapter folder; None: the bare base) from the
        next turn on, without a restart; turns already under way finish on the old one."""
        switch = getattr(self.student, "with_adapter", None)
        if switch is None:
            raise InvalidInput(f"The student {self.student.version} cannot switch versions while serving; "
                               "restart the app to serve another.")
        self.student = switch(adapter)

    # feedback

    def stuck(self, learners: list[User], attempts: int = STUCK_ATTEMPTS, hints: int = STUCK_HINTS) -> list[Stuck]:
        """Learners stuck now: an open session whose current step has had `attempts` failed
        attempts or `hints` rungs of the hint ladder, most recently active first."""
        found = []
        for learner in learners:
            for conversation in self.store.conversations(learner, limit=5):
                if conversation.status != "active":
                    continue
                state = _planner_state(self.store.messages(conversation))
                if state.attempts >= attempts or state.hint_level >= hints:
                    found.append(Stuck(learner.name, conversation, state.step + 1,
                                       len(solution_steps(conversation.problem)), state.attempts, state.hint_level))
        return sorted(found, key=lambda s: s.conversation.updated, reverse=True)

    def rate(self, user: User, conversation: Conversation, message_id: int, value: int,
             comment: str | None = None) -> None:
        """A learner's 👍 (+1) or 👎 (-1) on one tutor turn of their own conversation, with what
        was wrong if they say (teachers read it beside the turn)."""
        if value not in (THUMBS_UP, THUMBS_DOWN):
            raise InvalidInput("A rating is 👍 or 👎.")
        comment = clean_text(comment, max_chars=MAX_COMMENT_CHARS, what="comment") if comment and comment.strip() else None
        if conversation.user_id != user.id:
            raise NotFound("Only the tutor's messages in your own conversations can be rated.")
        for message in self.store.messages(conversation):
            if message.id == message_id and message.role == TUTOR_ROLE:
                self.store.set_feedback(message, user, THUMBS, value, comment)
                return
        raise NotFound("Only the tutor's messages in this conversation can be rated.")


def _close(reply) -> None:
    """Stop a reply's decoding (one no longer read); None."""
    close = getattr(reply, "close", None)
    if close:
        close()


def _history(transcript: list[Message], problem: Problem, prompt_format: str = MOVES_FORMAT) -> list[Said]:
    """The conversation as the model's prompt shows it: a tutor turn with its move, a learner
    turn with the note of the tutor turn that answered it (the planner's judgement)."""
    steps = solution_steps(problem)
    history = []
    for index, message in enumerate(transcript):
        if message.role == TUTOR_ROLE:
            history.append(Said("tutor", message.content, message.move or ""))
            continue
        answer = transcript[index + 1] if index + 1 < len(transcript) else None
        stored = answer.planner_state if answer is not None and answer.role == TUTOR_ROLE else None
        said = Said("learner", message.content)
        if stored:
            move = stored.get("move")
            said = Said("learner", message.content, note(
                stored.get("learner_state", ""), PlannerState.from_json(stored.get("planner")), steps,
                Move.from_json(move) if move else None, prompt_format, stored.get("planned_text", "")))
        history.append(said)
    return history


def _planner_state(transcript: list[Message]) -> PlannerState:
    """The planner state after the last tutor turn (stored with it)."""
    for message in reversed(transcript):
        if message.role == TUTOR_ROLE and message.planner_state:
            return PlannerState.from_json(message.planner_state.get("planner"))
    return PlannerState()
