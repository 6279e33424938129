"""Our tutor on MRBench: replay each conversation up to its end (the learner's mistake), let the
tutor write the next turn as the product would, and set the judge's reading of it beside the
annotators' reading of GPT-4, Sonnet, Llama-3.1-405B, Expert and Novice on the same
conversations (and the judge's reading of theirs, so every row can be compared with ours).

The problem and its worked solution are parsed from the conversation (MathDial's first tutor
turn quotes the problem; `ground_truth_solution` holds the solution where known). A problem
whose steps do not verify, or that has none (Bridge's lessons), is tutored in explain mode, as
a learner's own problem would be; the table says how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tutor.domain.mathdial import parse_ground_truth
from tutor.domain.planner import PlannerState
from tutor.domain.problems import Problem
from tutor.domain.prompting import Said
from tutor.domain.tutoring import solution_steps
from tutor.evaluation.harness import EvalTutor, TurnRequest
from tutor.judge.data import (
    DESIRED,
    DIMENSIONS,
    MRBENCH_FILE,
    SHORT,
    Conversation,
    parse_history,
    quality_of,
    read_mrbench,
    split_of,
)

ANNOTATED_TUTORS = ("GPT4", "Sonnet", "Llama31405B", "Expert", "Novice")
# A teacher turn worth imitating, as the annotators rated it: it identifies the mistake, guides,
# says what to do next, and keeps the answer back
RATED_WELL = ("Mistake_Identification", "Providing_Guidance", "Actionability", "Revealing_of_the_Answer")


@dataclass(frozen=True)
class TutorTurn:
    conversation: str
    text: str
    model_version: str  # the student's version if its draft was sent, else "planner"
    verified: bool  # the problem's steps verified (else explain mode)
    judged: dict[str, str]
    score: float


@dataclass
class Row:
    name: str
    counts: dict[str, list[int]] = field(default_factory=dict)  # dimension -> [desired, labelled]
    scores: list[float] = field(default_factory=list)

    def add(self, labels: dict[str, str | None], score: float | None = None) -> None:
        for dimension, desired in DESIRED.items():
            value = labels.get(dimension)
            if value is not None:
                tally = self.counts.setdefault(dimension, [0, 0])
                tally[0] += value == desired
                tally[1] += 1
        if score is not None:
            self.scores.append(score)

    def rate(self, dimension: str) -> float | None:
        desired, labelled = self.counts.get(dimension, (0, 0))
        return desired / labelled if labelled else None


def mrbench_problem(conversation: Conversation) -> Problem:
    """The conversation's problem, with its worked solution only where the steps verify."""
    question = conversation.exchange.problem or next((text for who, text in parse_history(conversation.history)
                                                      if who == "tutor"), "")
    solution, answer = parse_ground_truth(conversation.solution) if conversation.solution else ((), "")
    problem = Problem(id=f"mrbench-{conversation.id}", question=question, answer=answer.strip(),
                      solution=solution, source="learner")
    return problem if solution and solution_steps(problem) else Problem(problem.id, question, source="learner")


def requests_for(conversations: list[Conversation]) -> list[TurnRequest]:
    requests = []
    for conversation in conversations:
        turns = parse_history(conversation.history)
        last = max((i for i, (who, _) in enumerate(turns) if who == "learner"), default=None)
        history = [Said(who, text) for who, text in turns[:last]] if last is not None else []
        learner = turns[last][1] if last is not None else ""
        requests.append(TurnRequest(mrbench_problem(conversation), PlannerState(), history, learner or None))
    return requests


def tutor_on_mrbench(path: Path, tutor: EvalTutor, judge, limit: int | None = None,
                     split: str = "all") -> tuple[list[TutorTurn], list[Row]]:
    """Our turns (judged) and the table's rows: ours, then each annotated tutor as annotated and
    as judged. `split`: the judge's validation conversations (never trained on), its training
    ones, or all."""
    conversations = [c for c in read_mrbench(path) if split == "all" or split_of(c.group) == split][:limit]
    requests = requests_for(conversations)
    results = tutor.turns(requests)
    version = getattr(tutor.student, "version", "student")
    judged = judge.score_many([(c.exchange, r.text) for c, r in zip(conversations, results)])
    turns = [TutorTurn(c.id, r.text, version if r.verdict.ok and r.drafted else "planner",
                       bool(request.problem.solution), j.labels(), j.score)
             for c, r, request, j in zip(conversations, results, requests, judged)]
    ours = Row(f"ours ({version}), judged")
    for turn in turns:
        ours.add(turn.judged, turn.score)
    rows = [ours]
    for name in ANNOTATED_TUTORS:
        theirs = [(c, response, annotation) for c in conversations for tutor_name, response, annotation
                  in c.responses if tutor_name == name]
        if not theirs:
            continue
        annotated, read = Row(f"{name}, annotated"), Row(f"{name}, judged")
        scores = judge.score_many([(c.exchange, response) for c, response, _ in theirs])
        for (_, _, annotation), judgement in zip(theirs, scores):
            annotated.add(annotation)
            read.add(judgement.labels(), judgement.score)
        rows += [annotated, read]
    return turns, rows


def table(rows: list[Row], turns: list[TutorTurn]) -> str:
    """Per dimension, the share of turns with the desired class (RA: not revealing; tone:
    encouraging), and the mean judge score."""
    dimensions = list(DIMENSIONS)
    width = max(len(row.name) for row in rows) + 2
    lines = [f"{'% desired':<{width}}" + "".join(f"{SHORT[d]:>7}" for d in dimensions) + f"{'judge':>8}{'n':>6}"]
    for row in rows:
        cells = "".join(f"{rate * 100:>7.1f}" if (rate := row.rate(d)) is not None else f"{'—':>7}"
                        for d in dimensions)
        score = f"{sum(row.scores) / len(row.scores):>8.3f}" if row.scores else f"{'':>8}"
        count = max((tally[1] for tally in row.counts.values()), default=0)
        lines.append(f"{row.name:<{width}}{cells}{score}{count:>6}")
    verified = sum(turn.verified for turn in turns)
    model = sum(turn.model_version != "planner" for turn in turns)
    lines.append(f"{len(turns)} conversations: {verified} with verified steps, {len(turns) - verified} in explain "
                 f"mode; the model's draft sent in {model}, the planner's words in {len(turns) - model}")
    return "\n".join(lines)


def teacher_pairs(prompt_format: str, path: Path = MRBENCH_FILE, min_gap: float = 0.25,
                  per_chosen: int = 2) -> tuple[list[dict], dict[str, int]]:
    """Offline teacher data (the PedAlign recipe): on each of MRBench's training conversations
    (the judge's; its held-out ones stay out), a response the annotators rated well — by GPT-4,
    Sonnet, Llama-405B, a human expert... — and passing every check our own turn must pass, is
    chosen over the `per_chosen` responses to the same conversation rated worst, at least
    `min_gap` lower in annotated quality. Each is asked as the student would be asked there (our
    planner's turn on the learner's last message, in `prompt_format`). Returns DPO records and a
    tally of what was kept and left out."""
    from tutor.domain.tutoring import judge_draft
    from tutor.model.fake import FakeBackend
    from tutor.training.feedback import split_start

    tutor = EvalTutor(FakeBackend(prompt_format=prompt_format))  # its prompts, never its words
    records, tally = [], {"conversations": 0, "rated well": 0, "failed a check": 0, "no worse response": 0}
    for conversation in read_mrbench(path):
        if split_of(conversation.group) != "train":
            continue
        tally["conversations"] += 1
        request, = requests_for([conversation])
        plan = tutor.plan(request)
        prompt = tutor.prompt(request, plan)
        context, start = split_start([{"role": m.role, "content": m.content} for m in prompt.messages])
        rated = [(text.strip(), quality_of(annotation), annotation) for _, text, annotation in conversation.responses]
        for text, quality, annotation in rated:
            if quality is None or not all(annotation.get(d) == DESIRED[d] for d in RATED_WELL):
                continue
            tally["rated well"] += 1
            if not judge_draft(text, plan, prompt).verdict.ok:
                tally["failed a check"] += 1
                continue
            worse = sorted((q, other) for other, q, _ in rated if q is not None and q <= quality - min_gap)
            if not worse:
                tally["no worse response"] += 1
            for _, other in worse[:per_chosen]:
                records.append({"prompt": context, "chosen": [{"role": "assistant", "content": start + text}],
                                "rejected": [{"role": "assistant", "content": start + other}]})
    tally["pairs"] = len(records)
    return records, tally
