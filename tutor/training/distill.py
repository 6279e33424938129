"""Build the student's supervised dataset (TRL's conversational format) from tutoring dialogues.

One record per dialogue, rendered in the student's "moves" prompt format: the problem and its
verified steps, each learner message with the planner's note (replayed through the same
planner the live tutor runs), each tutor turn opening with its move tag. The loss falls on tutor
turns only, and not on those marked `"train": false` (a human turn that gives the answer away is
kept as context but never taught). Whole dialogues cost far fewer training tokens than one example
per turn, each repeating its context.

With a teacher model, the teacher also tutors simulated learners on bank problems under the
planner's moves; its turns that pass the guard and the metric filters are kept as targets.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

from tutor.domain.arithmetic import numbers_in
from tutor.domain.dialogues import MOVES, Dialogue, write_jsonl
from tutor.domain.planner import PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import Problem
from tutor.domain.prompting import DECISION_FORMAT, Said, student_messages
from tutor.domain.steps import final_answer_value
from tutor.domain.faithfulness import Vocabulary, check_turn, reason_kind
from tutor.domain.tutoring import TurnPlan, draft_judgement, replay_said, solution_steps
from tutor.evaluation.data import is_validation
from tutor.evaluation.harness import EvalTutor, TurnRequest, true_values
from tutor.evaluation.learners import ScriptedLearner
from tutor.evaluation.metrics import is_question, numbers_correct, states_final_answer

DATASET_NAME = "sft.jsonl"


@dataclass
class DistillReport:
    dialogues: int = 0
    targets: int = 0  # tutor turns the loss falls on
    masked: dict[str, int] = field(default_factory=Counter)  # tutor turns kept as context only, by reason
    moves: dict[str, int] = field(default_factory=Counter)  # targets by move
    sources: dict[str, int] = field(default_factory=Counter)  # dialogues by source
    validation_problems: int = 0  # held out
    prompt_format: str = DECISION_FORMAT  # how the records render the planner's notes
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


def human_records(pairs: Iterable[tuple[Problem, Dialogue]], report: DistillReport,
                  policy: RevealPolicy = RevealPolicy(), prompt_format: str = DECISION_FORMAT,
                  vocabulary: Vocabulary | None = None) -> Iterable[dict]:
    """Human teacher dialogues, replayed through the planner for its notes. With a vocabulary,
    a turn that contradicts the planner's judgement (the faithfulness check) is context only."""
    for problem, dialogue in pairs:
        steps = solution_steps(problem)
        final = final_answer_value(problem)
        history: list[Said] = []
        trained: list[bool] = []
        for turn, said in replay_said(problem, dialogue, policy):
            text = _without_name(turn.teacher.text, dialogue.learner.name)
            reason = _reject_human(text, turn.teacher.move, final, final in turn.learner_numbers, turn.plan)
            if reason is None and vocabulary is not None:
                judged = draft_judgement(problem, turn.plan, turn.teacher.move, said, vocabulary)
                contradictions = check_turn(text, judged)
                reason = reason_kind(contradictions[0]) if contradictions else None
            if reason:
                report.masked[reason] += 1
            else:
                report.targets += 1
                report.moves[turn.teacher.move] += 1
            history += turn.said(steps, text, prompt_format)
            trained.append(reason is None)
        if any(trained):
            report.dialogues += 1
            report.sources["human"] += 1
            yield _record(problem, history, trained, "human", dialogue.id)


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
                    turns: int = 5, seed: int = 0) -> Iterable[dict]:
    """The teacher tutors a scripted learner on each problem under the planner's moves; only its
    turns that pass the guard and the metric filters become targets."""
    sessions = []
    for problem in problems:
        learner = ScriptedLearner(problem, None, seed)
        opening = learner.opening()
        sessions.append({"problem": problem, "learner": learner, "state": PlannerState(), "said": opening,
                         "history": [], "trained": [], "numbers": set(numbers_in(opening)), "done": False})
    for _ in range(turns):
        active = [s for s in sessions if not s["done"]]
        if not active:
            break
        requests = [TurnRequest(s["problem"], s["state"], s["history"], s["said"]) for s in active]
        for session, request, result in zip(active, requests, teacher.turns(requests)):
            problem, plan = session["problem"], result.plan
            reason = _reject_teacher(result.text, result.verdict.ok, plan, final_answer_value(problem),
                                     session["numbers"], problem)
            if reason:
                report.masked[reason] += 1
            else:
                report.targets += 1
                report.moves[result.move] += 1
            session["history"] = session["history"] + teacher.said(request, result)
            session["trained"].append(reason is None)
            session["state"] = plan.state
            session["done"] = plan.state.solved
            if not session["done"]:
                session["said"] = session["learner"].respond(result.text, plan)
                session["numbers"].update(numbers_in(session["said"]))
    for session in sessions:
        if any(session["trained"]):
            report.dialogues += 1
            report.sources["teacher"] += 1
            yield _record(session["problem"], session["history"], session["trained"], "teacher",
                          f"teacher-{session['problem'].id}")


def _reject_teacher(text: str, passed_guard: bool, plan: TurnPlan, final: Fraction | None,
                    learner_numbers: set[Fraction], problem: Problem) -> str | None:
    if not passed_guard:
        return "teacher draft failed the guard"
    if states_final_answer(text, final, final in learner_numbers, plan.guard.question_expression_ok):
        return "gives the answer away"
    if not numbers_correct(text, true_values(problem) | learner_numbers):
        return "a number that is not true"
    if plan.move.move in ("focus", "probing") and not is_question(text):
        return "asks nothing"
    return None


def distill(pairs: list[tuple[Problem, Dialogue]], out_dir: Path, *, bank: Iterable[Problem] = (),
            teacher: EvalTutor | None = None, teacher_turns: int = 5, vocabulary: Vocabulary | None = None,
            progress: Callable[[str], None] = print) -> DistillReport:
    """Write `out_dir/sft.jsonl` (and its report) from all pairs outside the validation slice."""
    report = DistillReport()
    report.validation_problems = len({p.id for p, _ in pairs if is_validation(p.id)})
    train_pairs = [(p, d) for p, d in pairs if not is_validation(p.id)]
    records = list(human_records(train_pairs, report, vocabulary=vocabulary))
    progress(f"human dialogues: {len(records)} ({report.targets} tutor turns to learn from)")
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
