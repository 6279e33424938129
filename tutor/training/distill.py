"""Build the student's supervised dataset (TRL's conversational format) from tutoring dialogues.

One record per dialogue, rendered in the student's prompt format: the problem and its verified
steps, each learner message with the planner's note (replayed through the same planner the live
tutor runs), each tutor turn opening with its move tag. The loss falls on tutor turns only, and
not on those marked `"train": false`. Whole dialogues cost far fewer training tokens than one
example per turn, each repeating its context.

In the spine format (the default) each note carries the planner's own turn, and each target is
what the product would send had the human teacher's words been the student's draft: the human's
words (tidied) where they pass every check and carry the turn's spine (its verdict, hint,
question), else the planner's own turn (`DistillReport.target_sources`).

With a teacher model, the teacher also tutors simulated learners on bank problems under the
planner's moves; its turns that pass the guard and the metric filters are kept as targets.

With a student to resample (rejection sampling, as in ReST/RAFT): at each human turn the
student, in the same context and opening with the human's move, writes a few sampled drafts; the
first that passes the guard and the faithfulness check is the target in place of the human's
words. The student learns its own words that agree with the planner, the human teachers still
choose the moves, and a turn no sample gets right keeps the human's words (if they pass).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

from tutor.domain.dialogues import MOVES, Dialogue, write_jsonl
from tutor.domain.planner import PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem
from tutor.domain.prompting import SPINE_FORMAT, Said, student_messages
from tutor.domain.repeats import WORDS, RepeatRule
from tutor.domain.steps import final_answer_value
from tutor.domain.faithfulness import Vocabulary, reason_kind
from tutor.domain.tutoring import (
    ReplayedTurn,
    TurnPlan,
    draft_judgement,
    judge_draft,
    judge_turn,
    planner_note,
    replay_said,
    solution_steps,
    turn_prompt,
)
from tutor.evaluation.data import is_validation
from tutor.evaluation.harness import EvalTutor, TurnRequest
from tutor.evaluation.learners import ScriptedLearner
from tutor.evaluation.metrics import states_final_answer
from tutor.model.backend import Backend, GenerationParams, sample_outputs

DATASET_NAME = "sft.jsonl"


@dataclass
class DistillReport:
    dialogues: int = 0
    targets: int = 0  # tutor turns the loss falls on
    masked: dict[str, int] = field(default_factory=Counter)  # tutor turns kept as context only, by reason
    moves: dict[str, int] = field(default_factory=Counter)  # targets by move
    sources: dict[str, int] = field(default_factory=Counter)  # dialogues by source
    resampled: int = 0  # targets that are the resampled student's words, not the human's
    # spine format: targets that are the human's (or a teacher model's) words, or the planner's
    target_sources: dict[str, int] = field(default_factory=Counter)
    validation_problems: int = 0  # held out
    prompt_format: str = SPINE_FORMAT  # how the records render the planner's notes
    sha256: str = ""

    def to_json(self) -> dict:
        return {key: dict(value) if isinstance(value, Counter) else value for key, value in vars(self).items()}


def _record(problem: Problem, history: list[Said], trained: list[bool], source: str, dialogue_id: str) -> dict:
    messages = student_messages(problem, [s.expression for s in solution_steps(problem)], history, turns=None)
    flags = iter(trained)
    return {
        "messages": [
            {"role": m.role, "content": m.content, "train": next(flags) if m.role == "assistant" else None}
            for m in messages
        ],
        "source": source,
        "dialogue_id": dialogue_id,
        "problem_id": problem.id,
    }


@dataclass
class Resampler:
    """The student drafts `samples` sampled turns in a human turn's context, opening with the
    human's move; the first that passes the guard and the check is kept."""

    student: Backend
    samples: int = 4
    params: GenerationParams = GenerationParams(max_new_tokens=48, temperature=0.8, top_p=0.95)
    vocabulary: Vocabulary = Vocabulary(frozenset(), frozenset())

    def passing(self, problem: Problem, plan: TurnPlan, history: list[Said], learner_text: str | None,
                move: str | None) -> str | None:
        said = history + ([Said("learner", learner_text)] if learner_text else [])
        prompt = turn_prompt(problem, plan, said, prompt_format=self.student.prompt_format,
                             hint_requested=learner_text is None, vocabulary=self.vocabulary)
        if move not in (prompt.choices or (prompt.planned_move,)):
            return None  # the planner does not allow the human's move here
        forced = prompt.continued(move, "")
        for output in sample_outputs(self.student, forced.messages, self.params, self.samples):
            judged = judge_draft(output.text, plan, forced, output.truncated)
            if judged.verdict.ok and judged.text.strip():
                return judged.text
        return None


def human_records(pairs: Iterable[tuple[Problem, Dialogue]], report: DistillReport,
                  policy: RevealPolicy = RevealPolicy(), prompt_format: str = SPINE_FORMAT,
                  vocabulary: Vocabulary | None = None, resampler: Resampler | None = None,
                  workers: int = 1, progress: Callable[[str], None] = lambda _: None,
                  repeats: RepeatRule = WORDS) -> Iterable[dict]:
    """Human teacher dialogues, replayed through the planner for its notes. In the spine format
    every turn is taught as the product would send it (`sent_as`); otherwise, with a vocabulary,
    a turn that contradicts the planner's judgement (the faithfulness check) is context only.
    With a resampler, the student's passing draft replaces the human's words where it has one
    (dialogues `workers` at a time: the student model decodes them side by side)."""
    lock = threading.Lock()

    def record(pair: tuple[Problem, Dialogue]) -> dict | None:
        problem, dialogue = pair
        steps = solution_steps(problem)
        final = final_answer_value(problem)
        history: list[Said] = []
        trained: list[bool] = []
        for turn, context in replay_said(problem, dialogue, policy, repeats):
            text = _without_name(turn.teacher.text, dialogue.learner.name)
            reason = _reject_human(text, turn.teacher.move, final, final in turn.learner_numbers, turn.plan)
            sampled = None
            if reason != "no move label" and resampler is not None:
                sampled = resampler.passing(problem, turn.plan, history, turn.learner_text, turn.teacher.move)
            if sampled is not None:
                text, reason = sampled, None
            elif prompt_format == SPINE_FORMAT:
                text, source = sent_as(text, problem, turn, history, vocabulary, repeats)
                reason = None
                with lock:
                    report.target_sources[source] += 1
            elif reason is None and vocabulary is not None:
                # taught only if the product would send it as written (a focus or probing turn asks)
                judged = draft_judgement(problem, turn.plan, context, vocabulary)
                problems = judge_turn(text, turn.plan, turn.teacher.move, judged).reasons
                reason = reason_kind(problems[0]) if problems else None
            with lock:
                if reason:
                    report.masked[reason] += 1
                else:
                    report.targets += 1
                    report.moves[turn.plan.move.move if prompt_format == SPINE_FORMAT else turn.teacher.move] += 1
                    report.resampled += sampled is not None
            history += turn.said(steps, text, prompt_format)
            trained.append(reason is None)
        if not any(trained):
            return None
        with lock:
            report.dialogues += 1
            report.sources["human"] += 1
            if resampler and report.dialogues % 20 == 0:
                progress(f"resampled {report.dialogues} dialogues: {report.resampled} of {report.targets} "
                         "targets are the student's words")
        return _record(problem, history, trained, "human", dialogue.id)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from (found for found in pool.map(record, pairs) if found is not None)


def sent_as(text: str, problem: Problem, turn: ReplayedTurn, history: list[Said], vocabulary: Vocabulary | None,
            repeats: RepeatRule = WORDS) -> tuple[str, str]:
    """What the product would send had `text` been the student's draft of this turn, and whose
    words it is: "human" (as written, tidied: it passed every check and carries the spine) or
    "planner" (the planner's own turn)."""
    said = history + ([Said("learner", turn.learner_text)] if turn.learner_text else [])
    prompt = turn_prompt(problem, turn.plan, said, prompt_format=SPINE_FORMAT,
                         vocabulary=vocabulary or Vocabulary(frozenset(), frozenset()), repeats=repeats)
    judged = judge_draft(text, turn.plan, prompt)
    source = "human" if judged.verdict.ok else "planner"
    return judged.text, source


def _without_name(text: str, name: str) -> str:
    """MathDial's teachers greet the simulated learner by name; the student must not learn names."""
    if not name:
        return text
    return re.sub(rf",?\s*\b{re.escape(name)}\b", "", text).strip()


def _reject_human(text: str, move: str | None, final: Fraction | None, learner_stated: bool,
                  plan: TurnPlan) -> str | None:
    """Why a human turn is not taught (None: it is)."""
    if move not in MOVES:
        return "no move label"
    if states_final_answer(text, final, learner_stated, plan.guard.question_expression_ok):
        return "gives the answer away"
    return None


def teacher_records(problems: Iterable[Problem], teacher: EvalTutor, report: DistillReport, *,
                    turns: int = 5, seed: int = 0, prompt_format: str = SPINE_FORMAT) -> Iterable[dict]:
    """The teacher tutors a scripted learner on each problem under the planner's moves; each
    turn is taught as the product would send it (the teacher's words as far as they pass every
    check, the planner's for what they lack), with notes in the dataset's prompt format."""
    sessions = []
    for problem in problems:
        learner = ScriptedLearner(problem, None, seed)
        sessions.append({"problem": problem, "learner": learner, "state": PlannerState(),
                         "said": learner.opening(), "history": [], "notes": [], "done": False})
    for _ in range(turns):
        active = [s for s in sessions if not s["done"]]
        if not active:
            break
        requests = [TurnRequest(s["problem"], s["state"], s["history"], s["said"]) for s in active]
        for session, request, result in zip(active, requests, teacher.turns(requests)):
            plan = result.plan
            source = "teacher" if result.verdict.ok else "planner"
            report.target_sources[source] += 1
            report.targets += 1
            report.moves[result.move] += 1
            session["history"] = session["history"] + teacher.said(request, result)
            steps = solution_steps(session["problem"])
            session["notes"] += [Said("learner", request.learner_text, planner_note(plan, steps, prompt_format)),
                                 Said("tutor", result.text, result.move)]
            session["state"] = plan.state
            session["done"] = plan.state.solved
            if not session["done"]:
                session["said"] = session["learner"].respond(result.text, plan)
    for session in sessions:
        if session["notes"]:
            report.dialogues += 1
            report.sources["teacher"] += 1
            trained = [True] * sum(said.role == "tutor" for said in session["notes"])
            yield _record(session["problem"], session["notes"], trained, "teacher", f"teacher-{session['problem'].id}")


def distill(pairs: list[tuple[Problem, Dialogue]], out_dir: Path, *, bank: Iterable[Problem] = (),
            teacher: EvalTutor | None = None, teacher_turns: int = 5, vocabulary: Vocabulary | None = None,
            resampler: Resampler | None = None, workers: int = 1, prompt_format: str = SPINE_FORMAT,
            repeats: RepeatRule = WORDS, progress: Callable[[str], None] = print) -> DistillReport:
    """Write `out_dir/sft.jsonl` (and its report) from all pairs outside the validation slice."""
    report = DistillReport(prompt_format=prompt_format)
    report.validation_problems = len({p.id for p, _ in pairs if is_validation(p.id)})
    train_pairs = [(p, d) for p, d in pairs if not is_validation(p.id)]
    records = list(human_records(train_pairs, report, prompt_format=prompt_format, vocabulary=vocabulary,
                                 resampler=resampler, workers=workers, progress=progress, repeats=repeats))
    progress(f"human dialogues: {len(records)} ({report.targets} tutor turns to learn from"
             + (f", {report.resampled} of them the student's resampled words)" if resampler else ")"))
    if teacher is not None:
        problems = [p for p in bank if not is_validation(p.id) and not p.excluded and solution_steps(p)]
        before = report.targets
        records += list(teacher_records(problems, teacher, report, turns=teacher_turns))
        progress(f"teacher dialogues on {len(problems)} bank problems: {report.targets - before} turns kept")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / DATASET_NAME
    write_jsonl(path, records)
    report.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    (out_dir / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return report
