"""The evaluation harness: turn-level replay, interactive Success@k/Telling@k, attack suite.

Our tutor is the product's own pipeline (planner + student model + guard, as in the service),
with the model's drafts generated in batches.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Callable

from tutor.domain.arithmetic import numbers_in
from tutor.domain.dialogues import Dialogue
from tutor.domain.guard import GuardResult
from tutor.domain.planner import PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem
from tutor.config import VOCABULARY_FILE
from tutor.domain.faithfulness import Judgement, Vocabulary, load_vocabulary, reason_kind
from tutor.domain.prompting import INSTRUCT, PLANNER_FORMAT, Said
from tutor.domain.repeats import WORDS, RepeatRule
from tutor.domain.spine import Spine
from tutor.domain.steps import final_answer_value
from tutor.domain.tutoring import (
    DRAFT_TRIES,
    DraftReader,
    TurnPlan,
    TurnPrompt,
    draft_judgement,
    givens,
    judge_draft,
    plan_turn,
    planner_note,
    replay,
    replay_said,
    solution_steps,
    turn_prompt,
)
from tutor.evaluation.attacks import attacks_for
from tutor.evaluation.learners import ScriptedLearner, SimulatedLearner
from tutor.evaluation.metrics import (
    coherent,
    f1_by_label,
    false_fact,
    form_fault,
    hint_content,
    is_question,
    macro_f1,
    numbers_correct,
    rate,
    repeat_question,
    share,
    shown_then_replaced,
    states_final_answer,
    verdict_stated,
)
from tutor.model.backend import Backend, GenerationParams, generate_all, prompt_format, retry_params

if TYPE_CHECKING:
    from tutor.judge.model import Judge

# Tutor turns are one or two sentences; greedy, so a run is reproducible (another try at a
# failed draft is sampled, with a seed per try).
EVAL_PARAMS = GenerationParams(max_new_tokens=48, temperature=0)


@dataclass(frozen=True)
class TurnRequest:
    problem: Problem
    state: PlannerState
    history: list[Said]  # oldest first, without the learner message this turn answers
    learner_text: str | None


@dataclass(frozen=True)
class TurnResult:
    plan: TurnPlan
    draft: str
    text: str
    verdict: GuardResult
    move: str  # the move the text makes: the student's choice if its draft passed, else the planner's
    judgement: Judgement  # what the turn's words must agree with
    seen: tuple[str, ...] = ()  # what the learner saw as the turn streamed, the sent text last
    drafted: bool = True  # a model wrote a draft (not so for the planner student)
    first_ok: bool = False  # the first draft passed as written (`verdict`: the last try's)


class EvalTutor:
    """The product's turn pipeline, batched: plan, draft with the student, guard."""

    def __init__(self, student: Backend, policy: RevealPolicy = RevealPolicy(),
                 params: GenerationParams = EVAL_PARAMS,
                 exemplars: Callable[[str, str], list[str]] | None = None,
                 vocabulary: Vocabulary | None = None, tries: int = DRAFT_TRIES, repeats: RepeatRule = WORDS,
                 judge: Judge | None = None):
        self.student, self.policy, self.params, self.exemplars = student, policy, params, exemplars
        self.judge = judge  # reads the shown turns (and the human teachers') on MRBench's dimensions
        self.tries = tries
        self.prompt_format = prompt_format(student)
        self.vocabulary = vocabulary or load_vocabulary(VOCABULARY_FILE)
        self.repeats = repeats  # what counts as asking the same question again (the app's: by meaning)

    def plan(self, request: TurnRequest) -> TurnPlan:
        recent = [said.text for said in request.history if said.role == "tutor"][-2:]
        return plan_turn(request.problem, request.state, request.learner_text, self.policy,
                         hint_requested=request.learner_text is None, recent=recent, repeats=self.repeats)

    def prompt(self, request: TurnRequest, plan: TurnPlan) -> TurnPrompt:
        """What the student is asked for the planned turn."""
        r = request
        return turn_prompt(r.problem, plan, r.history + ([Said("learner", r.learner_text)] if r.learner_text else []),
                           exemplars=self.exemplars(plan.move.move, f"{r.learner_text or ''} {plan.planned_text}")
                           if self.exemplars and self.prompt_format == INSTRUCT else [],
                           prompt_format=self.prompt_format, hint_requested=r.learner_text is None,
                           vocabulary=self.vocabulary, repeats=self.repeats)

    def turns(self, requests: list[TurnRequest], plans: list[TurnPlan] | None = None) -> list[TurnResult]:
        """Each request's turn; `plans` when the caller already planned them."""
        plans = plans or [self.plan(r) for r in requests]
        prompts = [self.prompt(r, plan) for r, plan in zip(requests, plans)]
        if self.prompt_format == PLANNER_FORMAT:
            return [TurnResult(plan, "", plan.planned_text, GuardResult(), plan.move.move,
                               prompt.judged, (plan.planned_text,), drafted=False)
                    for plan, prompt in zip(plans, prompts)]
        outputs = generate_all(self.student, prompts, self.params) if prompts else []
        readers = [DraftReader(plan, prompt) for plan, prompt in zip(plans, prompts)]
        first = [judge_draft(output.text, plan, prompt, output.truncated, reader)
                 for plan, prompt, output, reader in zip(plans, prompts, outputs, readers)]
        judged = list(first)
        for attempt in range(1, self.tries):  # failed drafts again, afresh and sampled
            again = [(i, readers[i].next_try()) for i, turn in enumerate(judged) if not turn.verdict.ok]
            again = [(i, reader) for i, reader in again if reader is not None]
            if not again:
                break
            params = retry_params(replace(self.params, seed=self.params.seed or 0), attempt)
            outputs = generate_all(self.student, [reader.prompt for _, reader in again], params)
            for (i, reader), output in zip(again, outputs):
                judged[i], readers[i] = judge_draft(output.text, plans[i], reader.prompt, output.truncated, reader), reader
        return [TurnResult(plan, once.draft, turn.text, turn.verdict, turn.move, prompt.judged,
                           turn.seen, first_ok=once.verdict.ok)
                for plan, prompt, once, turn in zip(plans, prompts, first, judged)]

    def said(self, request: TurnRequest, result: TurnResult) -> list[Said]:
        """The turn as the next turn's history shows it."""
        steps = solution_steps(request.problem)
        learner = ([Said("learner", request.learner_text, planner_note(result.plan, steps, self.prompt_format))]
                   if request.learner_text else [])
        return learner + [Said("tutor", result.text, result.move)]


@dataclass
class EvalReport:
    dialogues: int = 0
    tutor_turns: int = 0
    leak_rate: float = 0.0
    leak_rate_unguarded: float = 0.0
    question_rate: float = 0.0
    move_f1: float = 0.0
    numbers_correct_rate: float = 0.0
    success_at_5: float = 0.0
    telling_at_5: float = 0.0
    human_success_at_5: float = 0.0
    human_telling_at_5: float = 0.0
    attack_leak_rate: float = 0.0
    coherence_rate: float = 0.0
    coherence_rate_unguarded: float | None = None
    shown_then_replaced: int = 0
    # mean words of the shown turns: a tutor turn is a sentence or two (MathDial's teachers: ~15)
    words_per_turn: float = 0.0
    # The words (metrics.py): on shown turns, and on the model's raw first drafts (`_unguarded`).
    verdict_stated_rate: float | None = None  # after a graded value: right confirmed, wrong named
    verdict_stated_rate_unguarded: float | None = None
    hint_content_rate: float | None = None  # when a hint is asked or due: the rung's content is there
    hint_content_rate_unguarded: float | None = None
    false_fact_rate: float = 0.0  # a false statement about the problem or the learner
    false_fact_rate_unguarded: float | None = None
    form_fault_rate: float = 0.0  # not clean, capitalised English sentences with one question
    form_fault_rate_unguarded: float | None = None
    repeat_question_rate: float = 0.0  # asks what one of the last two tutor turns asked
    repeat_question_rate_unguarded: float | None = None
    # turns sent whole in the model's words, as written (every check and the spine), after up to
    # `draft_tries` drafts; None: no model wrote drafts (the planner student)
    model_carried_rate: float | None = None
    model_carried_rate_unguarded: float | None = None  # the first draft of each turn alone, before any retry
    # The judge's reading of the shown turns (None without a judge): its mean score, and per
    # MRBench dimension the share of turns with the good class (RA: not revealing)
    judge_score: float | None = None
    judge_rates: dict[str, float] | None = None
    seconds: float = 0.0
    details: dict = field(default_factory=dict)  # the figures behind the keys, and extras

    def to_json(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        return table([self])


_COLUMNS = [
    ("turns", "tutor_turns", "{:d}"), ("leak", "leak_rate", "{:.1%}"),
    ("leak unguarded", "leak_rate_unguarded", "{:.1%}"), ("question", "question_rate", "{:.1%}"),
    ("move F1", "move_f1", "{:.2f}"), ("numbers ok", "numbers_correct_rate", "{:.1%}"),
    ("Success@5", "success_at_5", "{:.1%}"), ("Telling@5", "telling_at_5", "{:.1%}"),
    ("attack leak", "attack_leak_rate", "{:.1%}"),
    ("coherent", "coherence_rate", "{:.1%}"), ("coherent unguarded", "coherence_rate_unguarded", "{:.1%}"),
    ("shown then replaced", "shown_then_replaced", "{:d}"), ("words/turn", "words_per_turn", "{:.1f}"),
]
# The words: each on shown turns, then on the model's raw first drafts.
_WORDS = [
    ("verdict stated", "verdict_stated_rate", "{:.1%}"), ("hint content", "hint_content_rate", "{:.1%}"),
    ("false facts", "false_fact_rate", "{:.1%}"), ("form faults", "form_fault_rate", "{:.1%}"),
    ("repeated questions", "repeat_question_rate", "{:.1%}"), ("model carried", "model_carried_rate", "{:.1%}"),
]
JUDGE_COLUMNS = [("judge score", "judge_score", "{:.3f}")] + [
    (f"judge {name}", name, "{:.1%}") for name in ("MI", "ML", "RA", "PG", "Act", "Coh", "Tone", "HL")]
WORDS_COLUMNS = [column for name, key, form in _WORDS for column in ((name, key, form),
                                                                     (f"{name} unguarded", f"{key}_unguarded", form))]


def table(reports: list[EvalReport]) -> str:
    """One row per evaluated student (same dialogues), then the human teachers of the first
    report: the figures, then the words."""
    first = reports[0]
    human = first.details.get("human", {})
    reference = {
        "tutor_turns": human.get("turns"), "leak_rate": human.get("leak_rate"),
        "question_rate": human.get("question_rate"),
        "numbers_correct_rate": human.get("numbers_correct_rate"),
        "success_at_5": first.human_success_at_5, "telling_at_5": first.human_telling_at_5,
        "words_per_turn": human.get("words_per_turn"),
        **{key: human.get(key) for _, key, _ in _WORDS},
    }
    labels = [report.details.get("model", "our tutor") for report in reports]
    students = [(label, report.to_json()) for label, report in zip(labels, reports)]
    rows = students + [("human teachers", reference)]
    lines = _grid(rows, _COLUMNS) + [""] + _grid(rows, WORDS_COLUMNS)
    if first.judge_score is not None:  # the judge's reading, per dimension: the share in the good class
        judge_rows = [(label, {"judge_score": values.get("judge_score"), **(values.get("judge_rates") or {})})
                      for label, values in students + [("human teachers", human)]]
        lines += [""] + _grid(judge_rows, JUDGE_COLUMNS)
    seconds = ", ".join(f"{label} {report.seconds:.0f} s" for label, report in zip(labels, reports))
    lines.append(f"{first.dialogues} dialogues, {first.details.get('attacks', 0)} attack messages; {seconds}")
    for label, report in zip(labels, reports):
        if failures := report.details.get("draft_failures"):
            top = ", ".join(f"{reason} {share:.1%}" for reason, share in list(failures.items())[:4])
            lines.append(f"{label} drafts not sent whole, by first reason: {top}")
    return "\n".join(lines)


def _grid(rows: list[tuple[str, dict]], columns: list[tuple[str, str, str]]) -> list[str]:
    """Rows of figures under column names, aligned; — where a figure does not apply."""
    cells = [("", [name for name, _, _ in columns])]
    cells += [(label, ["—" if values.get(key) is None else form.format(values[key]) for _, key, form in columns])
              for label, values in rows]
    widths = [max(len(row[1][i]) for row in cells) for i in range(len(columns))]
    label_width = max(len(label) for label, _ in cells)
    return [f"{label:<{label_width}}  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for label, row in cells]


def evaluate(pairs: list[tuple[Problem, Dialogue]], tutor: EvalTutor, *, k: int = 5, seed: int = 0,
             attacks: int = 200,
             make_learner: Callable[[Problem, Dialogue], SimulatedLearner] | None = None) -> EvalReport:
    started = time.perf_counter()
    report = EvalReport(dialogues=len(pairs))
    turn_level(pairs, tutor, report)
    make_learner = make_learner or (lambda problem, dialogue: ScriptedLearner(problem, dialogue, seed))
    interactive(pairs, tutor, report, k, make_learner)
    human_reference(pairs, report, k)
    human_words(pairs, tutor, report)
    attack_suite(pairs, tutor, report, attacks)
    report.seconds = time.perf_counter() - started
    return report


def true_values(problem: Problem) -> set[Fraction]:
    """The problem's quantities: its givens, its worked solution's numbers, its answer."""
    values = set(givens(problem)) | {n for step in solution_steps(problem) for n in (step.value, *step.operands)}
    final = final_answer_value(problem)
    return values | ({final} if final is not None else set())


def turn_level(pairs: list[tuple[Problem, Dialogue]], tutor: EvalTutor, report: EvalReport) -> None:
    """At every human teacher turn, our tutor answers the same learner context."""
    requests, plans, contexts = [], [], []  # contexts: (problem, human move, learner stated final, learner numbers)
    human: list[str] = []  # the teacher's own turn at each request
    owners: list[str] = []  # the dialogue of each request (the gate compares dialogue by dialogue)
    for problem, dialogue in pairs:
        final = final_answer_value(problem)
        steps = solution_steps(problem)
        history: list[Said] = []
        for turn in replay(problem, dialogue, tutor.policy):
            requests.append(TurnRequest(problem, turn.before, list(history), turn.learner_text))
            plans.append(turn.plan)
            # what the learner said, and what their own calculation came to ("60+4+9" is their 73)
            said = set(turn.learner_numbers) | ({turn.plan.grade.value} if turn.plan.grade and turn.plan.grade.value else set())
            contexts.append((problem, turn.teacher.move, final in turn.learner_numbers, said))
            human.append(turn.teacher.text)
            owners.append(dialogue.id)
            history += turn.said(steps, prompt_format=tutor.prompt_format)
    results = tutor.turns(requests, plans)
    leaks = unguarded = questions = numbers_ok = 0
    moves = []
    for result, (problem, human_move, learner_stated, learner_numbers) in zip(results, contexts):
        final = final_answer_value(problem)
        question_ok = result.plan.guard.question_expression_ok
        leaks += states_final_answer(result.text, final, learner_stated, question_ok)
        unguarded += states_final_answer(result.draft, final, learner_stated, question_ok)
        questions += is_question(result.text)
        numbers_ok += numbers_correct(result.text, true_values(problem) | learner_numbers)
        if human_move:
            moves.append((result.move, human_move))
    total = len(results)
    report.tutor_turns = total
    report.leak_rate = rate(leaks, total)
    report.leak_rate_unguarded = rate(unguarded, total)
    report.question_rate = rate(questions, total)
    report.numbers_correct_rate = rate(numbers_ok, total)
    report.move_f1 = macro_f1(moves)
    # which moves it makes, and how well each matches the human's: what move F1 averages
    report.details["moves"] = dict(Counter(move for move, _ in moves).most_common())
    report.details["move_f1_by_move"] = {move: round(f1, 3) for move, f1 in f1_by_label(moves).items()}
    words(results, report)
    per_dialogue("words_per_turn", owners, [len(r.text.split()) for r in results], report)
    if tutor.judge is not None:
        report.judge_score, report.judge_rates, scores = judged(tutor.judge, requests, [r.text for r in results])
        per_dialogue("judge_score", owners, scores, report)
        score, rates, _ = judged(tutor.judge, requests, human)
        report.details.setdefault("human", {}).update(judge_score=score, judge_rates=rates)


def per_dialogue(metric: str, owners: list[str], values: list[float], report: EvalReport) -> None:
    """A metric's mean in each dialogue (`owners[i]` is the dialogue of `values[i]`): what the
    gate compares, dialogue by dialogue, with a bootstrap interval."""
    grouped: dict[str, list[float]] = {}
    for owner, value in zip(owners, values):
        grouped.setdefault(owner, []).append(value)
    report.details.setdefault("per_dialogue", {})[metric] = {
        owner: round(sum(found) / len(found), 4) for owner, found in grouped.items()}


def judged(judge: Judge, requests: list[TurnRequest],
           texts: list[str]) -> tuple[float | None, dict[str, float], list[float]]:
    """The judge's mean score over turns answering `requests`, per dimension the share of turns
    it puts in the good class, and each turn's score."""
    from tutor.judge.data import DESIRED, SHORT, exchange_of, final_answer

    exchanges = [exchange_of(r.problem.question, final_answer(r.problem.answer),
                             [(s.role, s.text) for s in r.history] + [("learner", r.learner_text or "")])
                 for r in requests]
    scores = judge.score_many(list(zip(exchanges, texts)))
    if not scores:
        return None, {}, []
    rates = {SHORT[d]: round(sum(j.label(d) == good for j in scores) / len(scores), 4) for d, good in DESIRED.items()}
    return round(sum(j.score for j in scores) / len(scores), 4), rates, [j.score for j in scores]


def words(results: list[TurnResult], report: EvalReport) -> None:
    """What the tutor's words say: shown turns that agree with the grade and stay grounded,
    the same for the model's raw drafts, drafts sent as written, text shown then withdrawn."""
    report.coherence_rate = rate(sum(coherent(r.text, r.judgement) for r in results), len(results))
    report.words_per_turn = sum(len(r.text.split()) for r in results) / len(results) if results else 0.0
    drafted = [r for r in results if r.drafted]
    if drafted:
        report.coherence_rate_unguarded = rate(sum(coherent(r.draft, r.judgement) for r in drafted), len(drafted))
        report.model_carried_rate = rate(sum(r.verdict.ok for r in drafted), len(drafted))
        report.model_carried_rate_unguarded = rate(sum(r.first_ok for r in drafted), len(drafted))
        # why the others were not sent whole: each failed draft's first reason, as shares of all drafts
        failures = Counter(reason_kind(r.verdict.reasons[0]) for r in drafted if not r.verdict.ok and r.verdict.reasons)
        report.details["draft_failures"] = {reason: round(count / len(drafted), 4)
                                            for reason, count in failures.most_common()}
    report.shown_then_replaced = sum(shown_then_replaced(r.seen) for r in results)
    for key, value in words_rates([(r.text, r.plan.spine, r.judgement) for r in results]).items():
        setattr(report, key, value)
    if drafted:
        for key, value in words_rates([(r.draft, r.plan.spine, r.judgement) for r in drafted]).items():
            setattr(report, f"{key}_unguarded", value)


def words_rates(turns: list[tuple[str, Spine, Judgement]]) -> dict[str, float | None]:
    """The words issue's rates over (text, spine, judgement) triples."""
    return {
        "verdict_stated_rate": share(verdict_stated(text, spine) for text, spine, _ in turns),
        "hint_content_rate": share(hint_content(text, spine) for text, spine, _ in turns),
        "false_fact_rate": share(false_fact(text, judged) for text, _, judged in turns),
        "form_fault_rate": share(form_fault(text, judged) for text, _, judged in turns),
        "repeat_question_rate": share(repeat_question(text, judged) for text, _, judged in turns),
    }


def interactive(pairs, tutor: EvalTutor, report: EvalReport, k: int,
                make_learner: Callable[[Problem, Dialogue], SimulatedLearner]) -> None:
    """A simulated learner talks with our tutor for up to k tutor turns (all dialogues in step)."""
    sessions = []
    for problem, dialogue in pairs:
        learner = make_learner(problem, dialogue)
        opening = learner.opening()
        sessions.append({"problem": problem, "learner": learner, "state": PlannerState(),
                         "history": [], "said": opening, "told": False, "solved": False,
                         "stated": final_answer_value(problem) in numbers_in(opening)})
    replies: list[TurnResult] = []
    for _ in range(k):
        active = [s for s in sessions if not s["solved"]]
        if not active:
            break
        requests = [TurnRequest(s["problem"], s["state"], s["history"], s["said"]) for s in active]
        results = tutor.turns(requests)
        replies.extend(results)
        for session, request, result in zip(active, requests, results):
            final = final_answer_value(session["problem"])
            if states_final_answer(result.text, final, session["stated"],
                                   result.plan.guard.question_expression_ok):
                session["told"] = True
            session["history"] = session["history"] + tutor.said(request, result)
            session["state"] = result.plan.state
            session["said"] = session["learner"].respond(result.text, result.plan)
            if final is not None and final in numbers_in(session["said"]):
                session["stated"] = session["solved"] = True
    report.success_at_5 = rate(sum(s["solved"] for s in sessions), len(sessions))
    per_dialogue("success_at_5", [dialogue.id for _, dialogue in pairs], [float(s["solved"]) for s in sessions], report)
    report.telling_at_5 = rate(sum(s["told"] for s in sessions), len(sessions))
    report.details["k"] = k
    report.details["interactive_turns"] = len(replies)
    report.shown_then_replaced += sum(shown_then_replaced(r.seen) for r in replies)


def human_reference(pairs, report: EvalReport, k: int) -> None:
    """The dataset's own teachers, scored the same way on the recorded dialogues."""
    turns = leaks = questions = numbers_ok = successes = tellings = words = 0
    for problem, dialogue in pairs:
        final = final_answer_value(problem)
        learner_numbers = set(numbers_in(dialogue.learner.incorrect_solution))
        learner_stated = final in learner_numbers
        teacher_turns, told, solved = 0, False, False
        for turn in dialogue.turns:
            if turn.role == "learner":
                learner_numbers.update(numbers_in(turn.text))
                if final in learner_numbers and teacher_turns <= k and teacher_turns > 0:
                    solved = True
                learner_stated = final in learner_numbers
                continue
            teacher_turns += 1
            turns += 1
            words += len(turn.text.split())
            leaked = states_final_answer(turn.text, final, learner_stated)
            leaks += leaked
            questions += is_question(turn.text)
            numbers_ok += numbers_correct(turn.text, true_values(problem) | learner_numbers)
            told = told or (leaked and teacher_turns <= k)
        successes += solved
        tellings += told
    report.human_success_at_5 = rate(successes, len(pairs))
    report.human_telling_at_5 = rate(tellings, len(pairs))
    report.details.setdefault("human", {}).update({"turns": turns, "leak_rate": rate(leaks, turns),
                               "question_rate": rate(questions, turns),
                               "numbers_correct_rate": rate(numbers_ok, turns),
                               "words_per_turn": words / turns if turns else 0.0})


def human_words(pairs, tutor: EvalTutor, report: EvalReport) -> None:
    """The words rates of the dataset's own teachers, each turn held to our planner's spine and
    checks at that point (their turns follow their own plan, so the spine rates say how often a
    human did what ours asks)."""
    turns = [(turn.teacher.text, turn.plan.spine,
              draft_judgement(problem, turn.plan, context, tutor.vocabulary, tutor.repeats))
             for problem, dialogue in pairs
             for turn, context in replay_said(problem, dialogue, tutor.policy, tutor.repeats)]
    report.details.setdefault("human", {}).update(words_rates(turns))


def attack_suite(pairs, tutor: EvalTutor, report: EvalReport, count: int) -> None:
    """Learner messages built to extract the answer; a leak is any tutor turn stating it."""
    problems = {problem.id: problem for problem, _ in pairs if final_answer_value(problem) is not None}
    if not problems or count <= 0:
        return
    runs = [{"problem": problems[pid], "attack": attack, "state": PlannerState(), "history": [],
             "leaked": False, "unguarded": False, "stated": False} for pid, attack in attacks_for(sorted(problems), count)]
    for index in range(max(len(run["attack"].messages) for run in runs)):
        active = [run for run in runs if index < len(run["attack"].messages)]
        requests = [TurnRequest(r["problem"], r["state"], r["history"], r["attack"].messages[index])
                    for r in active]
        for run, request, result in zip(active, requests, tutor.turns(requests)):
            final = final_answer_value(run["problem"])
            ok = result.plan.guard.question_expression_ok
            # a guess that hits the answer ("is it 2?") is the learner's, not a leak
            run["stated"] |= final in numbers_in(request.learner_text)
            run["leaked"] |= states_final_answer(result.text, final, run["stated"], ok)
            run["unguarded"] |= states_final_answer(result.draft, final, run["stated"], ok)
            run["state"] = result.plan.state
            run["history"] = run["history"] + tutor.said(request, result)
    messages = sum(len(run["attack"].messages) for run in runs)
    report.attack_leak_rate = rate(sum(run["leaked"] for run in runs), len(runs))
    report.details["attacks"] = messages
    report.details["attack_leak_rate_unguarded"] = rate(sum(run["unguarded"] for run in runs), len(runs))
