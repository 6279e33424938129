"""One tutor turn decided in code: grade the learner, plan the move, phrase it, fence it.

Used by the service for live conversations and by the evaluation to replay dialogues, so both
judge and tutor exactly the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from tutor.domain.arithmetic import numbers_in
from tutor.domain.dialogues import MOVES, Dialogue, Turn
from tutor.domain.form import TOO_MANY_QUESTIONS, tidy
from tutor.domain.grading import Grade, grade
from tutor.domain.faithfulness import (
    Judgement,
    Vocabulary,
    check_sentence,
    check_turn,
    judgement,
    learn_vocabulary,
    plain,
    ruled_out_openings,
    sentences,
)
from tutor.domain.guard import GuardContext, GuardResult, check
from tutor.domain.hints import SAFE_FOCUS, cloze, spine_for
from tutor.domain.planner import BOTTOM_OUT, PARTIAL, Move, PlannerState, plan
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem
from tutor.domain.prompting import (
    DECISION_FORMAT,
    INSTRUCT,
    MOVES_FORMAT,
    MOVES_FORMATS,
    SPINE_FORMAT,
    ChatMessage,
    Said,
    move_tag,
    read_move_tag,
    student_messages,
    tutoring_messages,
)
from tutor.domain.repeats import WORDS, RepeatRule
from tutor.domain.spine import CONFIRM, NAME_WRONG, Spine, confirms, names_mistake, questions_in, spine_reasons
from tutor.domain.steps import Step, final_answer_value, worked_solution
from tutor.domain.truth import facts_of

NO_VERDICT_FIRST = "does not open with the verdict on the learner's value"
SAID_BEFORE = "says it the way the tutor already did (the learner asked for another way)"


@dataclass(frozen=True)
class TurnPlan:
    state: PlannerState  # after this turn
    move: Move
    spine: Spine  # what the turn must carry, and the planner's own words for it
    grade: Grade | None
    guard: GuardContext

    @property
    def planned_text(self) -> str:
        """The planner's own turn: what the learner reads when a model's draft fails."""
        return self.spine.text


def solution_steps(problem: Problem) -> tuple[Step, ...]:
    """The verified steps, or none (then the tutor asks the learner to explain each step)."""
    solution = worked_solution(problem)
    return solution.steps if solution.verified else ()


def givens(problem: Problem) -> frozenset[Fraction]:
    return frozenset(numbers_in(problem.question))


def plan_turn(
    problem: Problem,
    state: PlannerState,
    learner_text: str | None,
    policy: RevealPolicy,
    *,
    hint_requested: bool = False,
    recent: Sequence[str] = (),
    repeats: RepeatRule = WORDS,
) -> TurnPlan:
    """The planner's turn on the learner's message (None: they pressed Hint). `recent`: the
    last two tutor turns, whose questions the planner's own words do not ask again (`repeats`
    says what counts as the same question) unless the learner just tried to answer one."""
    steps = solution_steps(problem)
    final = final_answer_value(problem) if steps else None
    given = givens(problem)
    judged = None
    last_right = state.learner_state == "correct"  # how the learner's previous message was judged
    if learner_text is not None:
        judged = grade(learner_text, steps, min(state.step, len(steps)), final, set(given), problem.question)
        # whatever the learner said, the tutor may say back to them; their calculation's value too,
        # unless it is the answer they have not worked out ("200 + 300" is not yet "500")
        computed = [judged.value] if judged.value is not None and (judged.value != final or judged.final) else []
        state = state.with_known(*numbers_in(learner_text), *computed)
    state, move = plan(state, judged, steps, policy, hint_requested=hint_requested)
    tried = judged is not None and judged.value is not None
    spine = spine_for(move, steps, judged, variant=state.same_rung, problem_text=problem.question,
                      learner_text=learner_text or "", last_right=last_right,
                      repeats=lambda text: not tried and bool(repeats.repeated(text, recent[-2:])))
    reveals = frozenset(Fraction(value) for value in move.reveals)
    guard = GuardContext(
        final_answer=final,
        # once solved (by the learner, or revealed as the policy allowed) it is no secret, nor a
        # number the learner said themselves; a step whose value is the answer may be shown only
        # when the policy allowed that
        final_allowed=(state.solved or (move.hint_level >= BOTTOM_OUT and final in reveals)
                       or (final is not None and final in {Fraction(v) for v in state.known_values})),
        allowed=given | reveals | frozenset(Fraction(v) for v in state.known_values),
        question_expression_ok=move.hint_level >= PARTIAL,
    )
    if not check(spine.text, guard).ok:
        # defence in depth: the planner's own words pass the same guard as a model's
        opening = spine.opening if check(spine.opening, guard).ok else ""
        spine = Spine(spine.verdict if opening else "", spine.value, opening=opening, content=SAFE_FOCUS)
    return TurnPlan(state, move, spine, judged, guard)


MAX_TURN_CHARS = 400


def draft_fence(turn: TurnPlan, move: str | None = None) -> GuardContext:
    """The guard for a model's draft of this turn: the turn's number rules, plus it must be
    short and, for focus and probing moves, ask the learner something."""
    move = move or turn.move.move
    return replace(turn.guard, requires_question=move in ("focus", "probing"), max_chars=MAX_TURN_CHARS)


def judge_turn(text: str, turn: TurnPlan, move: str, judged: Judgement) -> GuardResult:
    """Whether a whole turn making `move` goes out as written: the draft guard, the
    faithfulness check against `judged` (a model's draft, or a human turn taught as one), and
    the turn's spine."""
    verdict = check(text, draft_fence(turn, move))
    reasons = verdict.reasons + check_turn(text, judged) + spine_reasons(text, turn.spine)
    return GuardResult(tuple(dict.fromkeys(reasons)), verdict.leaked_final)


@dataclass(frozen=True)
class Context:
    """What was said before a tutor turn: everything, the learner's messages, the tutor's turns."""

    said: tuple[str, ...] = ()
    learner: tuple[str, ...] = ()
    tutor: tuple[str, ...] = ()

    @classmethod
    def of(cls, history: Sequence[Said]) -> Context:
        return cls(tuple(s.text for s in history), tuple(s.text for s in history if s.role == "learner"),
                   tuple(s.text for s in history if s.role == "tutor"))


def draft_judgement(problem: Problem, turn: TurnPlan, context: Context, vocabulary: Vocabulary,
                    repeats: RepeatRule = WORDS, *, check_form: bool = True) -> Judgement:
    """What a draft of this turn must agree with: the planner's grade of the learner, the solved
    problem, what has been said (the problem, its solution, the conversation: what may be named
    and what is true), the tutor's recent turns (not said or asked again) and clean form."""
    steps = solution_steps(problem)
    facts = facts_of(problem.question, steps, context.learner, common=vocabulary.common,
                     learner_values=[turn.grade.value] if turn.grade and turn.grade.value is not None else [],
                     done=turn.state.completed,
                     current=turn.state.step,
                     solved=turn.move.intent == "celebrate_solution" and (turn.grade is None or turn.grade.certain),
                     celebrating=turn.move.intent == "celebrate_solution")
    return judgement(vocabulary, turn.grade.state.value if turn.grade else None,
                     celebrates=turn.move.intent == "celebrate_solution",
                     context=[problem.question, *problem.solution, *context.said],
                     previous=context.tutor[-1] if context.tutor else "", facts=facts,
                     recent=context.tutor[-2:], learner_tried=turn.grade is not None and turn.grade.value is not None,
                     repeats=repeats, questions=max(1, questions_in(turn.planned_text)), check_form=check_form,
                     mixed=turn.grade is not None and turn.grade.wrong is not None,
                     certain=turn.grade is None or turn.grade.certain)


def teacher_contexts(dialogue: Dialogue) -> Iterator[tuple[Context, Turn]]:
    """Each teacher turn of a recorded dialogue with everything said before it (the learner's
    name and opening solution first): what the teacher could refer to."""
    said = [dialogue.learner.name, dialogue.learner.incorrect_solution]
    learner = [dialogue.learner.incorrect_solution]
    tutor: list[str] = []
    for turn in dialogue.turns:
        if turn.role == "teacher":
            yield Context(tuple(said), tuple(learner), tuple(tutor)), turn
            tutor.append(turn.text)
        else:
            learner.append(turn.text)
        said.append(turn.text)


def replay_said(problem: Problem, dialogue: Dialogue, policy: RevealPolicy,
                repeats: RepeatRule = WORDS) -> Iterator[tuple[ReplayedTurn, Context]]:
    """`replay`, each teacher turn with everything said before it (`teacher_contexts`)."""
    for turn, (context, _) in zip(replay(problem, dialogue, policy, repeats), teacher_contexts(dialogue)):
        yield turn, context


def learn_dialogue_vocabulary(pairs: Iterable[tuple[Problem, Dialogue]]) -> Vocabulary:
    """The faithfulness check's vocabulary from bank problems and their human dialogues."""
    pairs = list(pairs)
    problems = {p.id: f"{p.question} {' '.join(p.solution)}" for p, _ in pairs}
    turns = [(p.id, " ".join([p.question, *p.solution, *context.said]), turn.text)
             for p, d in pairs for context, turn in teacher_contexts(d)]
    return learn_vocabulary(problems.items(), turns)


HINT_REQUESTED = "asks_for_hint"  # the learner state of a turn the learner asked a hint for


def learner_label(turn: TurnPlan) -> str:
    """How the learner's message was judged (stored with the tutor turn)."""
    return turn.grade.state.value if turn.grade else HINT_REQUESTED


# What the tutor should do, as a v2 student's note says it: the planner's intent in words.
_INTENTS = {
    "praise_then_next_step": "say it is right, then ask about the next step",
    "celebrate_solution": "celebrate, the problem is solved",
    "already_solved": "the problem is already solved",
    "ask_to_explain": "it is not right; ask how they got it",
    "check_the_arithmetic": "right idea, wrong arithmetic; ask them to check it",
    "ask_to_clarify": "ask them to say more about this step",
    "answer_question_then_focus": "answer their question, then ask about this step",
    "decline_and_focus": "do not give the answer; give a hint",
    "redirect_to_problem": "bring them back to the problem",
    "bottom_out": "show this step's calculation",
    "hint_after_wrong_answer": "it is not right; give a hint",
    "hint_when_stuck": "give a hint",
    "hint_requested": "give the hint they asked for",
    "explain_your_step": "ask them to explain their step",
    "confirm_arithmetic_next_step": "the calculation checks out; ask what comes next",
    "confirm_then_focus": "say it is right, then ask about this step",
}


def note(learner: str, state: PlannerState, steps: tuple[Step, ...], move: Move | None = None,
         prompt_format: str = MOVES_FORMAT, planned: str = "") -> str:
    """What the planner tells a trained student about a learner message: how it was judged and
    where the problem stands; in the decision format also what to do and the step in focus; in
    the spine format the planner's own turn, whose verdict, hint and question the student's
    words must carry."""
    judged = f"learner: {learner.replace('_', ' ')}"
    if prompt_format == SPINE_FORMAT and planned:
        return f"({judged}; tutor: {planned})"
    if prompt_format == DECISION_FORMAT and move is not None:
        todo = _INTENTS.get(move.intent, move.intent.replace("_", " "))
        if move.hint_level and move.intent.startswith("hint"):
            todo += f" ({move.rung.replace('_', ' ')})"
        index = move.step if move.step is not None else (None if state.solved else state.step)
        if index is None or index >= len(steps):
            return f"({judged}; tutor: {todo})"
        sentence = cloze(steps[index])
        where = f"step {index + 1} of {len(steps)}" + (f': "{sentence}"' if sentence else "")
        return f"({judged}; tutor: {todo}; {where})"
    if state.solved:
        where = "problem solved"
    elif steps:
        where = f"next: step {min(state.step, len(steps) - 1) + 1} of {len(steps)}"
    else:
        where = "no verified steps"
    return f"({judged}; {where})"


def planner_note(turn: TurnPlan, steps: tuple[Step, ...], prompt_format: str = MOVES_FORMAT) -> str:
    return note(learner_label(turn), turn.state, steps, turn.move, prompt_format, turn.planned_text)


def move_choices(turn: TurnPlan, hint_requested: bool = False, prompt_format: str = MOVES_FORMAT) -> tuple[str, ...]:
    """The moves a trained student may open this turn with; the first is the planner's own.

    The planner decides what may be revealed; within that, a student of the moves formats
    (trained on human teachers) picks the move. A hint request, a bottom-out, a celebration or a
    redirect is the planner's alone; a partial hint may also be told outright (it reveals only
    operands). A student of the spine format phrases the planner's own turn, so its move too.
    """
    move = turn.move
    if (prompt_format == SPINE_FORMAT or hint_requested or move.move == "telling"
            or move.intent in ("celebrate_solution", "redirect_to_problem")):
        return (move.move,)
    if move.intent == "already_solved":
        return ("generic", "focus", "probing")
    others = ("focus", "probing") + (("telling",) if move.hint_level >= PARTIAL else ())
    return (move.move,) + tuple(m for m in others if m != move.move)


# A turn that celebrates a solution opens with praise: the student's first token is held to
# these words' first tokens (it chooses among them and writes the rest), as a move tag's is to
# the allowed moves. Measured on v5's 36 celebrations in the validation slice: unconstrained,
# 2 first drafts praised (it restated the learner's calculation: "200 + 300 = 500"). Words whose
# first token is a word or a word's start ("Ex"): not one letter, which opens anything.
CELEBRATION_OPENINGS = ("Well done", "Great", "Good", "Yes", "Excellent", "Exactly", "Correct", "Brilliant",
                        "Perfect", "Congratulations")
# A turn that confirms a right value opens with a confirmation, constrained the same way: the
# verdict comes first, and a draft that opens otherwise cannot show a sentence before it.
CONFIRMATION_OPENINGS = ("Yes", "Correct", "Exactly", "Perfect", "Excellent", "That's right", "That is right",
                         "You're right", "Right", "Well done", "Great job", "Good job", "Nice work", "Spot on")


QUESTION_WORDS = ("What", "How", "Can", "Could", "Which", "Why", "Where", "When", "Who", "Do", "Does", "Did", "Is",
                  "Are", "Was", "Would", "Will", "Should", "Have")
_LEAD_IN = re.compile(r"^(?:(?:hi|hello|ok|okay|so|now|alright|well|yes|no|sure|right|good|great|oh|hmm)\b[,.!]?\s+)+", re.I)


def ended(sentence: str) -> str:
    """A reply's last sentence that the model ended without a stop, ended: with "?" when it opens
    with a question word (after a lead-in such as "OK, "), else ".". The learner reads a question
    as one, and the checks count it as asking ("Can you walk me through your solution" used to
    fail as asking nothing)."""
    if not sentence or not (sentence[-1].isalnum() or sentence[-1] in "%)"):  # a stop, or a sum cut at "="
        return sentence
    words = _LEAD_IN.sub("", sentence).split()
    first = re.sub(r"(?:'s|'re|n't)$", "", words[0]).capitalize() if words else ""  # "What's", "Isn't"
    return sentence + ("?" if first in QUESTION_WORDS else ".")


@dataclass(frozen=True)
class TurnPrompt:
    """What the student model is asked for one turn, and how to read what it writes."""

    messages: list[ChatMessage]  # in the moves format the last is the tutor turn's forced start
    planned_move: str
    judged: Judgement  # what a draft must agree with, whichever move it makes
    choices: tuple[str, ...] = ()  # moves format: the moves the model may open with
    format: str = INSTRUCT
    openings: tuple[str, ...] = ()  # the reply's words must open with one of these (none: any)

    @property
    def constrained(self) -> bool:
        """The model picks its move: its first token must open one of `choices`."""
        return len(self.choices) > 1

    @property
    def ruled_out(self) -> tuple[str, ...]:
        """When the model picks its move: what its words may not open with after the move tag
        (praise after a wrong or stuck message, doubt after a right one), as the check would
        fail it."""
        return ruled_out_openings(self.judged) if self.constrained else ()

    @property
    def first_words(self) -> tuple[str, ...]:
        """What the reply's first token must begin (`GenerationParams.choices`): a move tag when
        the model picks its move, else one of `openings`; empty: anything."""
        return self.choices if self.constrained else self.openings

    @property
    def start(self) -> str:
        """The reply's forced start (the last message, in the moves format), "" if none."""
        return self.messages[-1].content if self.messages and self.messages[-1].role == "assistant" else ""

    def continued(self, move: str, shown: str) -> TurnPrompt:
        """This turn's prompt with the reply forced to open with `move` (and `shown`, words it
        must go on from): a resampled student drafts under the human teacher's move."""
        head = self.messages[:-1] if self.start else self.messages
        opening = (move_tag(move) if self.format in MOVES_FORMATS else "") + shown
        return replace(self, messages=head + [ChatMessage("assistant", opening)], choices=(move,), openings=())

    def read(self, output: str) -> tuple[str | None, str]:
        """(move, text to show) of the model's output so far; move None until (or unless)
        the output opens with an allowed move tag."""
        if not self.constrained:
            return (self.choices[0] if self.choices else self.planned_move), output
        move, text = read_move_tag(output)
        return (move, text) if move in self.choices else (None, "")


def previous_turn(history: Sequence[Said]) -> str:
    """The tutor's last turn in the history ("" before the first)."""
    return next((said.text for said in reversed(history) if said.role == "tutor"), "")


def turn_prompt(problem: Problem, turn: TurnPlan, history: list[Said], *, exemplars: Sequence[str] = (),
                prompt_format: str = INSTRUCT, hint_requested: bool = False,
                vocabulary: Vocabulary = Vocabulary(frozenset(), frozenset()),
                repeats: RepeatRule = WORDS) -> TurnPrompt:
    """The student's prompt for this turn; `history` ends with the learner message answered."""
    judged = draft_judgement(problem, turn, Context.of(history), vocabulary, repeats)
    if prompt_format in MOVES_FORMATS:
        steps = solution_steps(problem)
        if history and history[-1].role == "learner":
            history = history[:-1] + [replace(history[-1], note=planner_note(turn, steps, prompt_format))]
        choices = move_choices(turn, hint_requested, prompt_format)
        start = "[" if len(choices) > 1 else move_tag(choices[0])
        messages = student_messages(problem, [s.expression for s in steps], history)
        messages.append(ChatMessage("assistant", start))
        form = prompt_format
    else:
        messages = tutoring_messages(problem, history, move=turn.move.move, intent=turn.move.intent,
                                     planned=turn.planned_text, exemplars=exemplars)
        choices, form = (), INSTRUCT
    return TurnPrompt(messages, turn.move.move, judged, choices, form, openings=openings(turn))


def openings(turn: TurnPlan) -> tuple[str, ...]:
    """What a draft's words must open with: a celebration's praise, a right value's confirmation."""
    if turn.move.intent == "celebrate_solution":
        return CELEBRATION_OPENINGS
    return CONFIRMATION_OPENINGS if turn.spine.verdict == CONFIRM else ()


def verdict_given(sentence: str, spine: Spine) -> bool:
    """The sentence gives the spine's verdict: confirms a right value, names a wrong one."""
    if spine.verdict == CONFIRM:
        return confirms(sentence, spine)
    if spine.verdict == NAME_WRONG:
        return names_mistake([sentence], spine.value)
    return True


@dataclass(frozen=True)
class Judged:
    text: str  # what the learner is sent: the draft if it passed, else the planner's own turn
    move: str  # the move that text makes
    verdict: GuardResult  # ok: the draft was sent as written
    draft: str  # the model's words (without the move tag)
    seen: tuple[str, ...] = ()  # every text the learner saw as the turn streamed, the sent text last


class DraftReader:
    """Reads a model's output as it streams; the learner sees the draft only once the whole of
    it has passed every check and carries the turn's spine. Otherwise the planner's own turn
    goes out whole: the tutor with a model is never worse than the tutor without one.

    The draft is tidied first (list markers, stops, capitals: `form.tidy`) and read sentence by
    sentence as it completes: the guard (on everything so far, so an answer split over
    sentences is caught) and the faithfulness check (agreement, grounding, truth, form, no
    repeated question); the first sentence gives the verdict on the learner's value when there
    is one. At the first failing sentence the draft stops (no more decoding is read), and
    another try starts afresh. The service streams through it; the evaluation replays whole
    outputs through it.
    """

    def __init__(self, turn: TurnPlan, prompt: TurnPrompt, said_before: tuple[str, ...] = ()):
        self.turn, self.prompt = turn, prompt
        # the learner asked for this turn said another way: a draft in any of these words fails
        self.said_before = said_before
        self.output = ""
        self.move: str | None = None
        self.read: list[str] = []  # the draft's sentences so far, each passed
        self.failure: GuardResult | None = None

    def next_try(self) -> DraftReader | None:
        """A reader for another (fresh) draft of this turn once this one has failed; None when
        the model itself failed to run."""
        if self.failure is None or "the model failed" in self.failure.reasons:
            return None
        return self.another()

    def another(self) -> DraftReader:
        """A reader for another candidate draft of this turn (best of several)."""
        return DraftReader(self.turn, self.prompt, self.said_before)

    @property
    def text(self) -> str:
        return " ".join(self.read)

    @property
    def stopped(self) -> bool:
        return self.failure is not None

    def feed(self, output: str) -> None:
        """The model's whole output so far: its complete sentences are checked as they come."""
        self.output = output
        if self.failure is not None:
            return
        move, draft = self.prompt.read(output)
        if move is None:
            if len(output) > TAG_CHARS:  # a move tag is short: this output opens with none
                self.failure = GuardResult(("opens with no allowed move",))
            return
        self.move = move
        done, _ = sentences(tidy(own_turn(draft)))
        self._check(done[len(self.read):])

    def finish(self, truncated: bool = False) -> Judged:
        """The whole output is in: read its last sentence (unless the token limit cut it), judge
        the turn as a whole, and say what the learner is sent."""
        move, draft = self.prompt.read(self.output)
        if self.failure is None:
            if move is None:
                self.failure = GuardResult(("opens with no allowed move",))
            else:
                cut = own_turn(draft)
                done, rest = sentences(tidy(cut))
                finished = not truncated or cut != draft  # it started another turn: this one ended
                self._check(done[len(self.read):] + ([ended(rest)] if rest and finished else []))
        if self.failure is None:
            if not self.read:
                self.failure = GuardResult(("is cut off mid-sentence" if draft.strip() else "is empty",))
            else:
                verdict = judge_turn(self.text, self.turn, move, self.prompt.judged)
                if not verdict.ok:
                    self.failure = verdict
                elif plain(self.text) in {plain(said) for said in self.said_before}:
                    self.failure = GuardResult((SAID_BEFORE,))
        draft = draft.strip() if move is not None else self.output.strip()
        if self.failure is None:
            return Judged(self.text, move, GuardResult(), draft, (self.text,))
        return Judged(self.turn.planned_text, self.turn.move.move, self.failure, draft, (self.turn.planned_text,))

    def _check(self, new: list[str]) -> None:
        fence = replace(draft_fence(self.turn, self.move), requires_question=False)  # a question may come last
        judgement = self.prompt.judged
        together = replace(judgement, check_form=False, recent=())  # each sentence was read for these
        for sentence in new:
            so_far = " ".join(self.read + [sentence])
            verdict = check(so_far, fence)
            reasons = verdict.reasons + check_sentence(sentence, judgement)
            if not reasons:  # what only the sentences together say: "36 - 10 - 4 =" then "6 dishes."
                reasons = check_sentence(so_far, together)
            if not self.read and not verdict_given(sentence, self.turn.spine):
                reasons += (NO_VERDICT_FIRST,)
            if plain(sentence) in {plain(said) for said in self.read}:
                reasons += ("says the same sentence twice",)
            if questions_in(so_far) > max(1, judgement.questions):
                reasons += (TOO_MANY_QUESTIONS,)
            if reasons:
                self.failure = GuardResult(tuple(dict.fromkeys(reasons)), verdict.leaked_final)
                return
            self.read.append(sentence)


# Drafts a turn may take before the planner's words go out: a failed draft is tried again,
# sampled (`DraftReader.next_try`; measured in the evaluation: README).
DRAFT_TRIES = 3
# Passing drafts the judge chooses among (best of K), written as spares of an idle engine. 1 by
# measurement (bench/load.py, one run each, 16 learners): K = 2 raised the p95 wait for first
# words from 0.75 to 1.86 s (a spare decoding when a turn arrives delays it) and the judge
# scored the turns sent no better (0.467 against 0.473): README, "The judge".
DRAFT_CANDIDATES = 1
TAG_CHARS = 24  # a trained student's move tag is this short; longer without one is no tag
# another turn's move tag, also in round brackets as the student sometimes writes it ("well done
# (focus) can you walk me through it?"), or a speaker's name
_NEXT_TURN = re.compile(r"\s*\[[a-z]+\]|\s*\((?:%s)\)|\n\s*(?:tutor|teacher|learner|student)\s*:" % "|".join(MOVES),
                        re.I)


def own_turn(draft: str) -> str:
    """The draft up to where the model starts another turn (a move tag, a speaker's name)."""
    found = _NEXT_TURN.search(draft)
    return draft[:found.start()] if found else draft


def judge_draft(output: str, turn: TurnPlan, prompt: TurnPrompt, truncated: bool = False,
                reader: DraftReader | None = None) -> Judged:
    """Judge a model's whole output for this turn as it would have streamed, word by word
    (`reader`: another try's)."""
    reader = reader or DraftReader(turn, prompt)
    for boundary in [m.start() for m in re.finditer(r"\s", output)] + [len(output)]:
        reader.feed(output[:boundary])
    return reader.finish(truncated)


@dataclass(frozen=True)
class ReplayedTurn:
    """A human teacher's turn of a recorded dialogue, with what our planner made of that point."""

    before: PlannerState  # the planner state the turn starts from
    learner_text: str | None  # the learner's messages since the previous teacher turn, joined
    plan: TurnPlan  # our planner's turn on that learner text
    teacher: Turn  # what the human teacher said (and the move label)
    learner_numbers: frozenset[Fraction]  # every number the learner has said so far

    def said(self, steps: tuple[Step, ...], teacher_text: str | None = None,
             prompt_format: str = MOVES_FORMAT) -> list[Said]:
        """The turn as a later prompt's history shows it: the learner with the planner's note,
        the teacher with the move label (in the spine format the planner's move, which the
        student is held to)."""
        learner = ([Said("learner", self.learner_text, planner_note(self.plan, steps, prompt_format))]
                   if self.learner_text else [])
        move = self.plan.move.move if prompt_format == SPINE_FORMAT else self.teacher.move or "generic"
        tutor = Said("tutor", self.teacher.text if teacher_text is None else teacher_text, move)
        return learner + [tutor]


def replay(problem: Problem, dialogue: Dialogue, policy: RevealPolicy,
           repeats: RepeatRule = WORDS) -> Iterator[ReplayedTurn]:
    """Walk a recorded dialogue through the planner: its state follows the learner's real
    messages, as in a live conversation (the dialogue opens with the learner's wrong solution);
    the tutor turns before each point are the human teacher's. A teacher turn right after
    another (the learner said nothing between) answers the same learner message again, from the
    same state: the teacher went on talking, the learner asked for no hint."""
    state = PlannerState()
    opening = dialogue.learner.incorrect_solution
    numbers = set(numbers_in(opening))
    pending = [opening] if opening else []
    tutor: list[str] = []
    answered: tuple[PlannerState, str] | None = None  # the last learner message and the state before it
    for turn in dialogue.turns:
        if turn.role == "learner":
            pending.append(turn.text)
            numbers.update(numbers_in(turn.text))
            continue
        before, learner_text = (state, " ".join(pending)) if pending or answered is None else answered
        learner_text = learner_text or None
        plan = plan_turn(problem, before, learner_text, policy, hint_requested=learner_text is None,
                         recent=tutor[-2:], repeats=repeats)
        yield ReplayedTurn(before, learner_text, plan, turn, frozenset(numbers))
        answered = (before, learner_text or "")
        state, pending = plan.state, []
        tutor.append(turn.text)
