"""The judge's data: rows of (context, response, labels), each with its source.

Sources, each counted in the dataset's manifest:
- `mrbench`: tutor responses rated by trained annotators on MRBench's dimensions
  (`dialogues/mrbench.jsonl`), split by conversation into train and validation; the validation
  conversations never reach training.
- `contrast`: minimal pairs made in code from the MRBench training responses and from MathDial
  teacher turns — the answer stated, the verdict swapped to praise, the hint content stripped,
  a false number inserted, the previous question repeated — each with the labels the change
  implies.
- `mathdial`: human teacher turns from `dialogues/mathdial.jsonl` (human-like, coherent).
- `checks`: drafts the product's checks refused (stored with each tutor turn).
- `reviews`: teachers' rubric marks and rewrites in the database.

A label a source cannot say is left out (None); the trainer masks it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from tutor.config import DIALOGUES_DIR, DIALOGUES_FILE

MRBENCH_FILE = DIALOGUES_DIR / "mrbench.jsonl"

YES_SCALE = ("No", "To some extent", "Yes")
REVEALING = ("No", "Yes (and the answer is correct)", "Yes (but the answer is incorrect)")
TONE = ("Encouraging", "Neutral", "Offensive")
# MRBench's dimensions, as its annotation keys spell them, with their classes in order
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "Mistake_Identification": YES_SCALE,
    "Mistake_Location": YES_SCALE,
    "Revealing_of_the_Answer": REVEALING,
    "Providing_Guidance": YES_SCALE,
    "Actionability": YES_SCALE,
    "Coherence": YES_SCALE,
    "Tutor_Tone": TONE,
    "humanlikeness": YES_SCALE,
}
SHORT = {"Mistake_Identification": "MI", "Mistake_Location": "ML", "Revealing_of_the_Answer": "RA",
         "Providing_Guidance": "PG", "Actionability": "Act", "Coherence": "Coh", "Tutor_Tone": "Tone",
         "humanlikeness": "HL"}
# How good each class is for a learner (1 best): the annotated "good turn" score is their mean
GOODNESS: dict[str, dict[str, float]] = {
    dimension: ({"No": 0.0, "To some extent": 0.5, "Yes": 1.0} if classes == YES_SCALE else
                {"No": 1.0, REVEALING[1]: 0.0, REVEALING[2]: 0.0} if classes == REVEALING else
                {"Encouraging": 1.0, "Neutral": 0.75, "Offensive": 0.0})
    for dimension, classes in DIMENSIONS.items()
}
# the class a good turn gets on each dimension (RA: it does not reveal the answer)
DESIRED = {dimension: ("No" if classes == REVEALING else "Encouraging" if classes == TONE else "Yes")
           for dimension, classes in DIMENSIONS.items()}
VALIDATION_SHARE = 5  # one conversation in five is held out, chosen by a hash of its id

_TURN = re.compile(r"(?:^|\n)[\s\xa0]*(Tutor|Student)\s*:", re.IGNORECASE)
_MOVE_TAG = re.compile(r"^\s*\[?\w+\]\s*")  # a trained student's output opens with its move ("focus] ")
_QUESTION = re.compile(r"The question is:\s*(.*?)(?:\n|$)", re.DOTALL)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\w|\.\d)")  # "2.8." ends a sentence on 2.8


@dataclass(frozen=True)
class Exchange:
    """What a judge reads of a conversation before the turn it scores."""

    problem: str = ""
    answer: str = ""  # the final answer, where known: whether a turn reveals it
    tutor: str = ""  # the tutor's previous turn
    learner: str = ""  # the learner's last message

    def text(self) -> str:
        """The context as the judge reads it: the learner's message first, so a long problem
        is what a length limit cuts."""
        parts = [f"Student: {self.learner}", f"Tutor: {self.tutor}" if self.tutor else "",
                 f"Answer: {self.answer}" if self.answer else "", f"Problem: {self.problem}" if self.problem else ""]
        return " | ".join(part for part in parts if part)


@dataclass(frozen=True)
class Row:
    exchange: Exchange
    response: str
    labels: dict[str, str | None]  # dimension -> class (None: this source cannot say)
    quality: float | None  # the "good turn" score to learn, 0..1 (None: unknown)
    source: str
    conversation: str  # which conversation it answers (responses to one are compared pairwise)
    tutor: str = ""  # who wrote the response (MRBench's tutor names)
    group: str = ""  # conversations on one problem, or copies of one: they stay in one split

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Row:
        return cls(**(data | {"exchange": Exchange(**data["exchange"])}))


@dataclass(frozen=True)
class Conversation:
    """One MRBench conversation: its exchange and its rated responses."""

    id: str
    exchange: Exchange
    history: str
    responses: tuple[tuple[str, str, dict], ...]  # (tutor, response, annotation)
    solution: str = ""  # the worked solution, where known

    @property
    def group(self) -> str:
        """What keeps related conversations in one split: the problem (MathDial's several
        dialogues on one problem), else the whole history (the file merges two releases, so a
        conversation can appear twice under two ids)."""
        return _normalised(self.exchange.problem or self.history)


def _normalised(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split()).lower()


def split_of(group: str) -> str:
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    return "validation" if digest[0] % VALIDATION_SHARE == 0 else "train"


def parse_history(history: str) -> list[tuple[str, str]]:
    """MRBench's history text as (speaker, text) turns, speaker "tutor" or "learner"."""
    marks = list(_TURN.finditer(history))
    turns = []
    for mark, after in zip(marks, marks[1:] + [None]):
        text = history[mark.end():after.start() if after else len(history)]
        text = " ".join(text.replace("\xa0", " ").split())
        turns.append(("tutor" if mark.group(1).lower() == "tutor" else "learner", text))
    return turns


def final_answer(solution: str | None) -> str:
    """The last number of a worked solution (GSM8K-style: the answer alone on the last line)."""
    numbers = _NUMBER.findall((solution or "").replace(",", ""))
    return numbers[-1] if numbers else ""


def records(path: Path) -> Iterator[dict]:
    """The JSON objects of a JSONL file, one a line (blank lines skipped)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def read_mrbench(path: Path = MRBENCH_FILE) -> list[Conversation]:
    conversations = []
    for record in records(path):
        history = record["conversation_history"]
        question = _QUESTION.search(history.replace("\xa0", " "))
        exchange = exchange_of(" ".join(question.group(1).split()) if question else "",
                               final_answer(record.get("ground_truth_solution")), parse_history(history))
        responses = tuple((item["tutor"], item["response"], item["annotation"]) for item in record["responses"])
        conversations.append(Conversation(record["conversation_id"], exchange, history, responses,
                                          record.get("ground_truth_solution") or ""))
    return conversations


def quality_of(labels: dict[str, str | None]) -> float | None:
    """The annotated "good turn" score: the mean goodness of the labels given."""
    marks = [GOODNESS[dimension][value] for dimension, value in labels.items()
             if value is not None and value in GOODNESS[dimension]]
    return sum(marks) / len(marks) if marks else None


def mrbench_rows(conversations: Iterable[Conversation], split: str | None = None) -> list[Row]:
    """The rated responses (of one split, or all), every known dimension labelled."""
    rows = []
    for conversation in conversations:
        if split is not None and split_of(conversation.group) != split:
            continue
        for tutor, response, annotation in conversation.responses:
            labels = {dimension: annotation.get(dimension) if annotation.get(dimension) in classes else None
                      for dimension, classes in DIMENSIONS.items()}
            rows.append(Row(conversation.exchange, response.strip(), labels, quality_of(labels), "mrbench",
                            conversation.id, tutor, conversation.group))
    return rows


# Minimal pairs: one change to a turn, and what the change makes of its labels.
PRAISE = ("Great job, that's correct!", "Yes, that's right. Well done!", "Perfect, you got it!")
CONTENT_FREE = ("Okay.", "Let's keep going.", "Hmm, let me see.", "Alright, thanks for sharing.")
NOTHING_TO_GO_ON = {"Mistake_Identification": "No", "Mistake_Location": "No", "Providing_Guidance": "No",
                    "Actionability": "No"}


def _unlabelled() -> dict[str, str | None]:
    return dict.fromkeys(DIMENSIONS)


def contrast_rows(row: Row, rng: random.Random, after_mistake: bool = True) -> list[Row]:
    """Variants of a rated response after a mistake (MRBench's conversations all end on one),
    or of a human teacher turn after any learner message (`after_mistake` False: praise may be
    right there)."""
    made: list[tuple[str, dict[str, str | None], float]] = []
    answer = row.exchange.answer
    if answer and answer not in row.response:
        # the answer stated: everything else as annotated, the reveal now "Yes"
        made.append((f"{row.response} The answer is {answer}.",
                     row.labels | {"Revealing_of_the_Answer": REVEALING[1]}, 0.5))
        wrong = str(int(float(answer)) + rng.choice((-10, -2, -1, 1, 2, 10))) if "." not in answer else answer + "1"
        made.append((f"{row.response} The answer is {wrong}.",
                     row.labels | {"Revealing_of_the_Answer": REVEALING[2], "Coherence": "No"}, 0.3))
    if after_mistake:  # the verdict swapped: praise for a mistake identifies nothing, guides nowhere
        made.append((rng.choice(PRAISE), _unlabelled() | NOTHING_TO_GO_ON | {
            "Revealing_of_the_Answer": "No", "Coherence": "No", "Tutor_Tone": "Encouraging"}, 0.1))
    # the hint content stripped
    made.append((rng.choice(CONTENT_FREE), _unlabelled() | NOTHING_TO_GO_ON | {
        "Revealing_of_the_Answer": "No", "Tutor_Tone": "Neutral"}, 0.15))
    numbers = [match for match in _NUMBER.finditer(row.response) if match.group() != answer]
    if numbers:  # a false number: the turn now says something untrue of the problem
        match = rng.choice(numbers)
        false = str(int(float(match.group())) + rng.choice((1, 3, 7))) if "." not in match.group() else match.group() + "5"
        made.append((row.response[:match.start()] + false + row.response[match.end():],
                     _unlabelled() | {"Coherence": "No"}, max(0.0, (row.quality or 0.5) - 0.4)))
    if row.exchange.tutor and row.exchange.tutor != row.response:  # the previous question again
        made.append((row.exchange.tutor, _unlabelled() | {"Coherence": "No", "Mistake_Location": "No"}, 0.2))
    return [Row(row.exchange, text, labels, quality, "contrast", row.conversation, row.tutor, row.group)
            for text, labels, quality in made]


def mathdial_rows(path: Path = DIALOGUES_FILE, limit: int = 600, seed: int = 0,
                  held_out: frozenset[str] = frozenset()) -> list[Row]:
    """Human teacher turns after a learner's message: written by people, in context. Left out:
    the evaluation's validation dialogues (the gate reads them with the judge) and any problem
    in `held_out` (normalised problem texts: MRBench's validation conversations include
    MathDial dialogues)."""
    from tutor.evaluation.data import is_validation

    rows, problems = [], _problem_texts()
    for record in records(path):
        turns = record["turns"]
        problem = problems.get(record["problem_id"], ("", ""))
        if is_validation(record["problem_id"]) or _normalised(problem[0]) in held_out:
            continue
        for index in range(2, len(turns)):
            turn, before, earlier = turns[index], turns[index - 1], turns[index - 2]
            if turn["role"] != "teacher" or before["role"] != "learner" or earlier["role"] != "teacher":
                continue
            exchange = Exchange(problem[0], problem[1], earlier["text"], before["text"])
            labels = _unlabelled() | {"humanlikeness": "Yes", "Coherence": "Yes", "Tutor_Tone": None}
            rows.append(Row(exchange, turn["text"], labels, None, "mathdial", f"mathdial:{record['id']}",
                            "MathDial teacher", _normalised(problem[0])))
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def _problem_texts() -> dict[str, tuple[str, str]]:
    from tutor.config import PROBLEMS_FILE

    return {str(record["id"]): (record["question"], final_answer(str(record["answer"])))
            for record in records(PROBLEMS_FILE)}


@dataclass
class Manifest:
    """What a judge dataset holds: rows per source and split, and the file's hash."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    validation_conversations: list[str] = field(default_factory=list)
    sha256: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def build_rows(store=None, mrbench: Path = MRBENCH_FILE, seed: int = 0,
               mathdial_limit: int = 600) -> tuple[list[Row], list[Row]]:
    """(train rows, validation rows). Validation is MRBench's held-out conversations only;
    everything made from them (contrast pairs) stays out of training too."""
    rng = random.Random(seed)
    conversations = read_mrbench(mrbench)
    train, validation = mrbench_rows(conversations, "train"), mrbench_rows(conversations, "validation")
    held_out = frozenset(c.group for c in conversations if split_of(c.group) == "validation")
    teachers = mathdial_rows(limit=mathdial_limit, seed=seed, held_out=held_out)
    # one variant per turn, so made rows are as many as rated ones and do not drown them
    contrasts = [rng.choice(contrast_rows(row, rng)) for row in train]
    contrasts += [rng.choice(contrast_rows(row, rng, False)) for row in teachers]
    rows = train + contrasts + teachers + (stored_rows(store) if store is not None else [])
    rng.shuffle(rows)
    return rows, validation


def stored_exchanges(store) -> Callable:
    """A reader of stored tutor turns: the exchange each answers (each conversation read once)."""
    transcripts: dict[int, tuple] = {}

    def exchange(message) -> Exchange:
        if message.conversation_id not in transcripts:
            conversation = store.conversation(message.conversation_id, None)
            transcripts[message.conversation_id] = (conversation, store.messages(conversation))
        conversation, transcript = transcripts[message.conversation_id]
        return exchange_before(conversation.problem, transcript, message.id)
    return exchange


def stored_rows(store) -> list[Row]:
    """The product's own verdicts: drafts its checks refused, and teachers' reviews — a rubric
    mark where it maps onto a dimension, a rewrite as a good turn beside the one it replaced."""
    rows = []
    exchange_of_turn = stored_exchanges(store)
    for labelled in store.labelled_turns():
        message = labelled.message
        exchange = exchange_of_turn(message)
        source = f"store:{message.conversation_id}"
        for tried in ((message.planner_state or {}).get("guard") or {}).get("tries", []):
            text = _MOVE_TAG.sub("", tried.get("output", "")).strip()
            labels = refused_labels(tried.get("reasons") or [])
            if text and any(labels.values()):
                rows.append(Row(exchange, text, labels, 0.1, "checks", source, "refused draft", source))
        for review in labelled.reviews:
            labels = _unlabelled()
            marks = review.marks
            if marks.get("no_leak") is not None:
                labels["Revealing_of_the_Answer"] = "No" if marks["no_leak"] else REVEALING[1]
            if marks.get("socratic") is not None:
                labels["Providing_Guidance"] = "Yes" if marks["socratic"] else "No"
            if marks.get("encouraging") is not None:
                labels["Tutor_Tone"] = "Encouraging" if marks["encouraging"] else "Neutral"
            marks = [mark for mark in marks.values() if mark is not None]
            quality = sum(marks) / len(marks) if marks else None
            if review.rewrite:  # what the teacher would have said: a turn that guides, reads well
                rows.append(Row(exchange, review.rewrite, _unlabelled() | REWRITE_LABELS, 1.0, "reviews", source,
                                "teacher rewrite", source))
                quality = min(quality if quality is not None else 0.5, 0.5)  # a rewrite says it fell short
            rows.append(Row(exchange, message.content, labels, quality, "reviews", source, "reviewed turn", source))
    return rows


# What a check's refusal says of a draft on MRBench's dimensions (by the first words of its reason)
REFUSALS = (
    (("gives the final answer", "states the final answer", "mentions "), {"Revealing_of_the_Answer": REVEALING[1]}),
    (("does not open with the verdict", "tells the learner they are right", "tells the learner they are wrong",
      "calls a value"), {"Mistake_Identification": "No", "Coherence": "No"}),
    (("does not ask the learner anything", "asks nothing toward"), {"Actionability": "No"}),
    (("does not give the partial hint", "does not give the focus hint"), {"Providing_Guidance": "No"}),
    (("says a sentence of the previous turn", "asks again what", "counts what the problem", "names what is not",
      "suggests a calculation", "states a false", "says the learner said", "says work remains",
      "is not about the step"), {"Coherence": "No"}),
    (("asks a question without a word", "asks without a question word", "leaves a bracket", "starts mid-phrase",
      "has words that are not English", "says it is right twice", "says the same sentence twice",
      "asks more than one question"), {"humanlikeness": "No"}),
)
REWRITE_LABELS = {"Providing_Guidance": "Yes", "Coherence": "Yes", "humanlikeness": "Yes"}


def refused_labels(reasons: list[str]) -> dict[str, str | None]:
    labels = _unlabelled()
    for reason in reasons:
        for starts, implied in REFUSALS:
            if reason.startswith(starts):
                labels |= implied
    return labels


def exchange_of(problem: str, answer: str, turns: Sequence[tuple[str, str]]) -> Exchange:
    """The exchange a turn answers, from the (role, text) turns before it ("learner" / "tutor"):
    the learner's last message and the tutor's turn before that."""
    last = max((i for i, (role, _) in enumerate(turns) if role == "learner"), default=len(turns))
    learner = turns[last][1] if last < len(turns) else ""
    tutor = next((text for role, text in reversed(turns[:last]) if role == "tutor"), "")
    return Exchange(problem, answer, tutor, learner)


def exchange_before(problem, transcript, message_id: int | None = None) -> Exchange:
    """What came before a tutor turn of a stored conversation (`message_id`; None: the next
    turn): the problem, its answer, the tutor's turn before and the learner's last message."""
    return exchange_of(problem.question, final_answer(str(problem.answer or "")),
                       [(m.role, m.content) for m in transcript if message_id is None or m.id < message_id])


def write_dataset(rows: list[Row], validation: list[Row], out: Path) -> Manifest:
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.jsonl", rows), ("validation.jsonl", validation)):
        with open(out / name, "w", encoding="utf-8") as file:
            for row in part:
                file.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
    counts: dict[str, dict[str, int]] = {}
    for split, part in (("train", rows), ("validation", validation)):
        for source, count in Counter(row.source for row in part).items():
            counts.setdefault(source, {})[split] = count
    manifest = Manifest(counts, sorted({row.conversation for row in validation}),
                        hashlib.sha256((out / "train.jsonl").read_bytes()).hexdigest())
    (out / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    return manifest

