"""`eval --quick`: the guard and the planner on the human dialogues of `dialogues/`, in seconds.

- guard false positives: share of the human teachers' non-telling turns the guard would block
  (a human saying what the learner already said, or a given, must pass);
- faithfulness: share of all human teacher turns the faithfulness check would reject (praise
  for a value the planner judged wrong, "not quite" for a right one, no celebration of a
  solution, a thing the problem does not have, a false statement, a repeated question), by
  reason, also on the validation slice alone (the check's vocabulary is learned without it);
  beside it, the turns whose form the form check would fault (humans' typos, lower-case
  starts), and the turns that carry our planner's spine at that point (a human follows their
  own plan, so this says how often a human did what ours asks);
- leak rate: share of our tutor's turns (planner phrasing) that state the final answer before
  the learner did; question rate: share of them that ask the learner something.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from fractions import Fraction

from tutor.config import VOCABULARY_FILE
from tutor.domain.arithmetic import numbers_in
from tutor.domain.dialogues import Dialogue
from tutor.domain.guard import GuardContext, check
from tutor.domain.planner import PlannerState
from tutor.domain.policy import RevealPolicy
from tutor.domain.problems import ProblemBank
from tutor.domain.steps import final_answer_value
from tutor.domain.faithfulness import Vocabulary, check_turn, load_vocabulary, reason_kind
from tutor.domain.repeats import WORDS, RepeatRule
from tutor.domain.spine import spine_reasons
from tutor.domain.tutoring import draft_judgement, givens, plan_turn, replay_said
from tutor.evaluation.data import is_validation
from tutor.evaluation.metrics import is_question, states_final_answer


@dataclass
class QuickReport:
    dialogues: int = 0
    skipped: int = 0  # dialogues whose problem is not in the bank (excluded)
    human_turns: int = 0  # non-telling human teacher turns checked
    human_blocked: int = 0
    human_blocked_for_final: int = 0  # of those: the human stated the answer before the learner
    human_telling_turns: int = 0
    human_telling_blocked: int = 0
    faithfulness_turns: int = 0  # all human teacher turns
    faithfulness_rejected: int = 0
    faithfulness_reasons: Counter = field(default_factory=Counter)  # rejected turns by first reason
    validation_turns: int = 0
    validation_rejected: int = 0
    form_faulted: int = 0  # human turns the form check would fault
    form_reasons: Counter = field(default_factory=Counter)
    spine_carried: int = 0  # human turns that carry our planner's spine at that point
    tutor_turns: int = 0
    tutor_leaks: int = 0
    tutor_questions: int = 0
    seconds: float = 0.0
    blocked_examples: list[str] = field(default_factory=list)

    @property
    def guard_false_positive_rate(self) -> float:
        return self.human_blocked / max(self.human_turns, 1)

    @property
    def faithfulness_rejection_rate(self) -> float:
        return self.faithfulness_rejected / max(self.faithfulness_turns, 1)

    @property
    def leak_rate(self) -> float:
        return self.tutor_leaks / max(self.tutor_turns, 1)

    @property
    def question_rate(self) -> float:
        return self.tutor_questions / max(self.tutor_turns, 1)

    def table(self) -> str:
        rows = [
            ("dialogues replayed", f"{self.dialogues} ({self.skipped} skipped: problem excluded)"),
            ("human teacher turns checked (not telling)", str(self.human_turns)),
            ("guard false-positive rate on them", f"{self.guard_false_positive_rate:.1%}"),
            ("  of which the human stated the final answer early",
             f"{self.human_blocked_for_final / max(self.human_turns, 1):.1%}"),
            ("guard block rate on human telling turns",
             f"{self.human_telling_blocked / max(self.human_telling_turns, 1):.1%} "
             f"of {self.human_telling_turns}"),
            ("human teacher turns the faithfulness check would reject",
             f"{self.faithfulness_rejection_rate:.1%} of {self.faithfulness_turns}"),
            *[(f"  {reason}", f"{count / max(self.faithfulness_turns, 1):.1%}")
              for reason, count in self.faithfulness_reasons.most_common()],
            ("  on the validation slice alone",
             f"{self.validation_rejected / max(self.validation_turns, 1):.1%} of {self.validation_turns}"),
            ("human teacher turns the form check would fault",
             f"{self.form_faulted / max(self.faithfulness_turns, 1):.1%}"),
            *[(f"  {reason}", f"{count / max(self.faithfulness_turns, 1):.1%}")
              for reason, count in self.form_reasons.most_common()],
            ("human teacher turns that carry our planner's spine",
             f"{self.spine_carried / max(self.faithfulness_turns, 1):.1%}"),
            ("our tutor turns (planner phrasing)", str(self.tutor_turns)),
            ("leak rate", f"{self.leak_rate:.1%}"),
            ("question rate", f"{self.question_rate:.1%}"),
            ("seconds", f"{self.seconds:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def run_quick(dialogues: list[Dialogue], bank: ProblemBank, policy: RevealPolicy = RevealPolicy(),
              vocabulary: Vocabulary | None = None, repeats: RepeatRule = WORDS) -> QuickReport:
    report = QuickReport()
    vocabulary = vocabulary or load_vocabulary(VOCABULARY_FILE)
    started = time.perf_counter()
    for dialogue in dialogues:
        if dialogue.problem_id not in bank.problems:
            report.skipped += 1
            continue
        report.dialogues += 1
        _replay(dialogue, bank.get(dialogue.problem_id), policy, repeats, report)
        _faithfulness(dialogue, bank.get(dialogue.problem_id), policy, vocabulary, repeats, report)
    report.seconds = time.perf_counter() - started
    return report


def _replay(dialogue: Dialogue, problem, policy: RevealPolicy, repeats: RepeatRule, report: QuickReport) -> None:
    final = final_answer_value(problem)
    # givens, the learner's written attempt the teacher starts from, and everything said since
    said: set[Fraction] = set(givens(problem)) | set(numbers_in(dialogue.learner.incorrect_solution))
    learner_stated_final = final in said
    state, pending, tutor = PlannerState(), [], []
    for turn in dialogue.turns:
        if turn.role == "learner":
            pending.append(turn.text)
            numbers = numbers_in(turn.text)
            said.update(numbers)
            learner_stated_final = learner_stated_final or final in numbers
            continue
        # the human teacher's turn, judged by the guard in the same context
        human = check(turn.text, GuardContext(final, learner_stated_final, frozenset(said)))
        if turn.move == "telling":
            report.human_telling_turns += 1
            report.human_telling_blocked += not human.ok
        else:
            report.human_turns += 1
            if not human.ok:
                report.human_blocked += 1
                report.human_blocked_for_final += human.leaked_final
                if len(report.blocked_examples) < 5:
                    report.blocked_examples.append(f"{dialogue.id}: {turn.text} ({human.reasons[0]})")
        # our tutor's turn at the same point
        if pending:
            planned = plan_turn(problem, state, " ".join(pending), policy, recent=tutor[-2:], repeats=repeats)
            state, pending = planned.state, []
            report.tutor_turns += 1
            report.tutor_leaks += states_final_answer(planned.planned_text, final, learner_stated_final,
                                                      planned.guard.question_expression_ok)
            report.tutor_questions += is_question(planned.planned_text)
        # what the human teacher said is now known to the learner
        said.update(numbers_in(turn.text))
        tutor.append(turn.text)


def _faithfulness(dialogue: Dialogue, problem, policy: RevealPolicy, vocabulary: Vocabulary, repeats: RepeatRule,
                  report: QuickReport) -> None:
    """Hold each human teacher turn to the checks a model draft must pass at that point: for
    meaning (the reported rejections), for form, and against our planner's spine."""
    validation = is_validation(problem.id)
    for turn, context in replay_said(problem, dialogue, policy, repeats):
        judged = draft_judgement(problem, turn.plan, context, vocabulary, repeats, check_form=False)
        text = turn.teacher.text
        reasons = check_turn(text, judged)
        report.faithfulness_turns += 1
        report.validation_turns += validation
        if reasons:
            report.faithfulness_rejected += 1
            report.validation_rejected += validation
            report.faithfulness_reasons[reason_kind(reasons[0])] += 1
        faults = check_turn(text, replace(judged, check_form=True))
        form = [reason for reason in faults if reason not in reasons]
        if form:
            report.form_faulted += 1
            report.form_reasons[reason_kind(form[0])] += 1
        report.spine_carried += not spine_reasons(text, turn.plan.spine)
