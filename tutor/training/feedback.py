"""Feedback datasets: logged tutor turns and what was said about them, as preference data.

DPO pairs (TRL's conversational preference format: prompt, chosen, rejected):
- a teacher's rewrite is chosen over the turn the learner was shown (a corrected move tag alone
  makes a pair of the same words under the two tags);
- a turn the learner asked to hear another way is rejected beside the wording they stopped at
  (each earlier wording of it, unless the last one got a 👎 too);
- a draft that failed the guard or the faithfulness check is rejected beside the text actually
  sent (the check is the labeller; `simulated` when a scripted learner was in the conversation);
- where the judge ranked several passing drafts of a turn (best of K), the one sent is chosen
  over each it scored at least `judge_margin` lower (the judge is the labeller);
- with `mrbench`, offline teacher data: MRBench's well-rated teacher turns over worse-rated ones
  on the same conversation, asked as the student would be asked there;
- with `planner_pairs`, where a draft passed every check and was sent, it and the planner's own
  words for the turn make a pair when the judge scores one at least `judge_margin` higher, the
  higher chosen (the judge is the labeller; the student learns the planner's wording where it
  teaches better, and keeps its own where that does).

KTO examples (TRL's unpaired format: prompt, completion, label): learners' 👍/👎 (a turn asked
to be said another way counts as a 👎), teachers' rubric ratings (good when every judged item
holds), and both sides of each check-labelled pair.

SFT examples of the rounds that train by SFT: self-imitation's kept drafts (`imitation`), and
conditional training's rated turns, each under its rating (`conditional`).

The prompt is exactly what the student was asked (stored with the turn); the moves format's
forced start (`[` or `[move] `) opens the completion, so prompt + completion is the student's
context and reply token for token. Only turns asked in the target prompt format are used.

Rules: duplicates are dropped (the most trusted copy stays); the chosen side of the DPO pairs is
on average at most `max_length_ratio` times as long as the rejected side (a round learned length
instead of teaching when its chosen turns were twice as long: the least trusted, most lopsided
pairs go first until it holds); what a learner's conversations give
(their thumbs, check-labelled drafts) is at most `max_learner_share` of a dataset, one example at
least (simulated sessions belong to no learner; teachers' labels are theirs); teacher labels
weigh `teacher_weight` times a learner's, written as that many rows so any trainer honours it;
deleted learners are gone from the store, so from every later dataset.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from tutor.domain.prompting import INSTRUCT, move_tag
from tutor.domain.tutoring import SAID_BEFORE
from tutor.storage.store import LabelledTurn, Store, now

LEARNER, TEACHER, CHECK, JUDGE, SIMULATED = "learner", "teacher", "check", "judge", "simulated"
MRBENCH = "mrbench"  # expert and LLM teachers' turns as MRBench's annotators rated them
SOURCES = (TEACHER, MRBENCH, LEARNER, CHECK, JUDGE, SIMULATED)  # most trusted first: which copy of a duplicate stays
DPO_FILE, KTO_FILE, MANIFEST_FILE = "dpo.jsonl", "kto.jsonl", "manifest.json"
IMITATION_FILE = "imitate.jsonl"  # a self-imitation round's SFT targets
CONDITIONAL_FILE = "conditional.jsonl"  # a conditional-training round's SFT examples
# Conditional training's control line: a turn rated bad is learned under it. No served prompt has
# it, so the served prompt is the good condition and every version is still asked the same way.
BAD_CONDITION = "Rated: a poor tutor turn."


@dataclass(frozen=True)
class DatasetOptions:
    prompt_format: str  # the served student's: its examples must be asked the way it is asked
    include_simulated: bool = True
    max_learner_share: float = 0.01  # of a dataset's examples, from any one learner's conversations
    teacher_weight: int = 3
    max_length_ratio: float = 1.15  # mean words of the chosen side over the rejected side's
    judge_margin: float = 0.05  # how much lower the judge must score a passing draft to reject it
    mrbench: bool = False  # add MRBench's rated teacher turns as pairs (tutor.evaluation.mrbench.teacher_pairs)
    keep_score: float = 0.6  # self-imitation: the judge's score a passing draft needs to be imitated
    planner_pairs: bool = False  # the planner's words and a sent draft, the one the judge scores higher chosen

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Example:
    record: dict  # TRL's fields
    source: str
    owner_id: int | None  # the learner whose conversation it came from (None: simulated)
    message_id: int
    weight: int = 1

    def key(self) -> str:
        return json.dumps(self.record, sort_keys=True)

    def row(self) -> dict:
        return self.record | {"source": self.source, "message_id": self.message_id}


@dataclass
class Dataset:
    dpo: list[Example] = field(default_factory=list)
    kto: list[Example] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def collect(turns: list[LabelledTurn], options: DatasetOptions) -> Dataset:
    """Every example the turns support, before duplicates and caps."""
    found = Dataset()
    by_id = {turn.message.id: turn for turn in turns}
    turned_down = {(turn.message.planner_state or {}).get("another_way_of") for turn in turns}
    for turn in turns:
        stored = turn.message.planner_state or {}
        if (asked := _asked(turn, options, found.dropped)) is None:
            continue
        context, start = asked
        simulated = turn.origin == SIMULATED
        owner = None if simulated else turn.owner_id

        def add(kind: list[Example], record: dict, source: str, weight: int = 1) -> None:
            kind.append(Example({"prompt": context} | record, source, owner, turn.message.id, weight))

        shown = _completion(turn.message.move, turn.message.content, options.prompt_format)
        for review in turn.reviews:
            weight = options.teacher_weight
            better_move = review.move if review.move and review.move != turn.message.move else None
            if review.rewrite or better_move:
                better = _completion(better_move or turn.message.move, review.rewrite or turn.message.content,
                                     options.prompt_format)
                if better == shown:  # a move tag the prompt format does not show
                    found.dropped["correction the format cannot show"] += 1
                else:
                    add(found.dpo, {"chosen": _said(better), "rejected": _said(shown)}, TEACHER, weight)
            if review.good is not None:
                add(found.kto, {"completion": _said(shown), "label": review.good}, TEACHER, weight)
        for thumbs in turn.feedback:
            add(found.kto, {"completion": _said(shown), "label": thumbs.value > 0}, LEARNER)
        if turn.message.id not in turned_down and not simulated:  # the wording the learner stopped at
            for earlier in _earlier_wordings(turn, by_id):
                first = _completion(earlier.message.move, earlier.message.content, options.prompt_format)
                add(found.kto, {"completion": _said(first), "label": False}, LEARNER)
                if all(thumbs.value > 0 for thumbs in turn.feedback):
                    add(found.dpo, {"chosen": _said(shown), "rejected": _said(first)}, LEARNER)
        guard = stored.get("guard") or {}
        # drafts tried before the sent one, and the last if it failed; one refused only for
        # repeating an earlier wording (say it another way) may be a good turn: no label
        failed = [tried.get("output") or "" for tried in guard.get("tries", []) if tried.get("reasons") != [SAID_BEFORE]]
        if not guard.get("passed", True) and guard.get("reasons") != [SAID_BEFORE]:
            failed.append(guard.get("output") or "")
        ranking = stored.get("ranking") or {}
        candidates = ranking.get("candidates") or []
        if 0 <= ranking.get("chosen", -1) < len(candidates):
            best = candidates[ranking["chosen"]]["score"]
            for candidate in candidates:
                worse = _completion(turn.message.move, candidate["text"], options.prompt_format)
                if best - candidate["score"] >= options.judge_margin and worse.strip() != shown.strip():
                    add(found.dpo, {"chosen": _said(shown), "rejected": _said(worse)}, JUDGE)
        labeller = SIMULATED if simulated else CHECK
        for output in failed:
            draft = start + output
            if output.strip() and draft.strip() != shown.strip():
                add(found.dpo, {"chosen": _said(shown), "rejected": _said(draft)}, labeller)
                add(found.kto, {"completion": _said(draft), "label": False}, labeller)
                add(found.kto, {"completion": _said(shown), "label": True}, labeller)
    return found


def _asked(turn: LabelledTurn, options: DatasetOptions, dropped: Counter) -> tuple[list[dict], str] | None:
    """What the student was asked for a turn: the context and the reply's forced start; None
    (counted in `dropped`) for a turn asked in another format, or simulated and left out."""
    prompt = (turn.message.planner_state or {}).get("prompt") or {}
    if prompt.get("format") != options.prompt_format:
        dropped["other prompt format"] += 1
        return None
    if turn.origin == SIMULATED and not options.include_simulated:
        dropped["simulated, left out"] += 1
        return None
    return split_start(prompt["messages"])


def split_start(messages: list[dict]) -> tuple[list[dict], str]:
    """A prompt's context and its reply's forced start (the moves format's last, assistant
    message; "" where there is none)."""
    start = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
    return (messages[:-1] if start else messages), start


def imitation(turns: list[LabelledTurn], options: DatasetOptions, score: Callable[[LabelledTurn, str], float],
              dropped: Counter) -> list[Example]:
    """Self-imitation (I2D2): the student's own drafts that the critic keeps — every check passed
    (a draft sent whole, or one of the passing candidates the judge ranked) and `score` (the
    judge's, in the turn's exchange) at least `keep_score` — as SFT targets asked as it was asked
    (earlier tutor turns in the prompt are context, not targets)."""
    found = []
    for turn in turns:
        if (asked := _asked(turn, options, dropped)) is None:
            continue
        context, _ = asked
        stored = turn.message.planner_state or {}
        ranking = stored.get("ranking") or {}
        if ranking.get("candidates"):
            drafts = [(candidate["text"], candidate["score"]) for candidate in ranking["candidates"]]
        elif _sent_whole(turn):
            drafts = [(turn.message.content, None)]
        else:
            dropped["no draft passed the checks"] += 1
            continue
        for text, judged in drafts:
            if (judged if judged is not None else score(turn, text)) < options.keep_score:
                dropped[f"judged below {options.keep_score:g}"] += 1
                continue
            messages = _context_only(context)
            target = {"role": "assistant", "content": _completion(turn.message.move, text, options.prompt_format),
                      "train": True}
            found.append(Example({"messages": messages + [target]}, JUDGE,
                                 None if turn.origin == SIMULATED else turn.owner_id, turn.message.id))
    return found


def planner_pairs(turns: list[LabelledTurn], options: DatasetOptions, score: Callable[[LabelledTurn, str], float],
                  dropped: Counter) -> list[Example]:
    """DPO pairs of the two texts that passed every check for a turn, the draft that was sent and
    the planner's own words, where `score` (the judge's, in the turn's exchange) puts one at least
    `judge_margin` above the other: the planner's words chosen where they teach better, the
    student's own draft where it does (so a round learns the planner's wording where it is
    better, and keeps its own where that is)."""
    found = []
    for turn in turns:
        stored = turn.message.planner_state or {}
        planned, draft = (stored.get("planned_text") or "").strip(), turn.message.content
        if not planned or not _sent_whole(turn):
            continue
        if planned == draft.strip() or (asked := _asked(turn, options, Counter())) is None:
            continue
        lead = score(turn, planned) - score(turn, draft)
        if abs(lead) < options.judge_margin:
            dropped["planner's words and draft judged alike"] += 1
            continue
        chosen, rejected = (planned, draft) if lead > 0 else (draft, planned)
        context, _ = asked
        move = turn.message.move
        found.append(Example({"prompt": context, "chosen": _said(_completion(move, chosen, options.prompt_format)),
                              "rejected": _said(_completion(move, rejected, options.prompt_format))},
                             JUDGE, None if turn.origin == SIMULATED else turn.owner_id, turn.message.id))
    return found


def _sent_whole(turn: LabelledTurn) -> bool:
    """The student's draft passed every check and was sent as it was written."""
    stored = turn.message.planner_state or {}
    return bool((stored.get("guard") or {}).get("passed")) and turn.message.model_version != "planner"


def judge_scorer(store: Store, judge) -> Callable[[LabelledTurn, str], float]:
    """The judge's score of a text as a stored turn's words, in that turn's exchange."""
    from tutor.judge.data import stored_exchanges

    exchange = stored_exchanges(store)
    return lambda turn, text: judge.score(exchange(turn.message), text).score


def build_imitation(store: Store, out_dir: Path, options: DatasetOptions, judge) -> dict:
    """Write a self-imitation round's imitate.jsonl and manifest.json (`judge` scores drafts the
    judge did not rank when they were written); returns the manifest."""
    dropped: Counter = Counter()
    kept = finish(imitation(store.labelled_turns(), options, judge_scorer(store, judge), dropped), options, dropped)
    return _write(out_dir, options, {IMITATION_FILE: (kept, dropped)}, Counter())


def _context_only(messages: list[dict]) -> list[dict]:
    """A prompt's messages as an SFT example's context: its earlier tutor turns are not targets."""
    return [m | {"train": False} if m["role"] == "assistant" else m for m in messages]


def conditional(examples: list[Example], dropped: Counter) -> list[Example]:
    """Conditional training (Korbak et al., "Pretraining Language Models with Human Preferences"):
    every rated turn is an SFT target, its rating a condition in the prompt. Rated bad (a 👎, a
    failed draft, the rejected side of a pair), it is learned after `BAD_CONDITION` in the
    instructions; rated good, under the prompt as served. The student learns the language of
    both, and to write the bad kind only when told to, which it never is. A turn rated both ways
    (a teacher's 👎 on the text the checks chose) keeps the most trusted source's rating; the
    other copy is counted in `dropped`."""
    found, rated = [], set()
    for example in sorted(examples, key=lambda e: SOURCES.index(e.source)):
        record = example.record
        sides = ([(record["completion"], record["label"])] if "completion" in record
                 else [(record["chosen"], True), (record["rejected"], False)])
        system, *dialogue = record["prompt"]
        if system["role"] != "system":
            system, dialogue = {"role": "system", "content": ""}, record["prompt"]
        context = _context_only(dialogue)
        for (completion,), good in sides:
            if (turn := json.dumps([record["prompt"], completion], sort_keys=True)) in rated:
                dropped["turn rated already (a more trusted source's rating stays)"] += 1
                continue
            rated.add(turn)
            condition = system if good else system | {"content": f"{system['content']}\n{BAD_CONDITION}".lstrip()}
            found.append(Example({"messages": [condition, *context, completion | {"train": True}]},
                                 example.source, example.owner_id, example.message_id, example.weight))
    return found


def assemble_conditional(store: Store, options: DatasetOptions) -> tuple[list[Example], Counter, Counter]:
    """A conditional-training round's examples: the rated turns of kto.jsonl and both sides of
    dpo.jsonl's pairs, each under its condition; with what was dropped, and the turns skipped."""
    files, skipped = assemble(store, options)
    dropped: Counter = Counter()
    examples = conditional([example for kept, _ in files.values() for example in kept], dropped)
    return finish(examples, options, dropped), dropped, skipped


def build_conditional(store: Store, out_dir: Path, options: DatasetOptions) -> dict:
    """Write a conditional-training round's conditional.jsonl and manifest.json; returns the manifest."""
    kept, dropped, skipped = assemble_conditional(store, options)
    return _write(out_dir, options, {CONDITIONAL_FILE: (kept, dropped)}, skipped)


def finish(examples: list[Example], options: DatasetOptions, dropped: Counter) -> list[Example]:
    """Drop duplicates (the most trusted copy stays), then cap what each learner's conversations
    give (their own thumbs, check-labelled drafts) at `max_learner_share` of the final dataset,
    one example at least. Teachers' labels are the teacher's and are not capped."""
    ranked = sorted(examples, key=lambda e: (SOURCES.index(e.source), -e.message_id))
    unique: dict[str, Example] = {}
    for example in ranked:
        if example.key() in unique:
            dropped["duplicate"] += 1
        else:
            unique[example.key()] = example
    kept = list(unique.values())
    capped = kept
    while True:  # the cap shrinks with the dataset it caps: repeat until it holds
        cap = max(1, math.floor(options.max_learner_share * len(capped)))
        per_learner: Counter = Counter()
        capped = []
        for example in kept:
            if example.owner_id is not None and example.source != TEACHER:
                if per_learner[example.owner_id] >= cap:
                    continue
                per_learner[example.owner_id] += 1
            capped.append(example)
        if max(1, math.floor(options.max_learner_share * len(capped))) == cap:
            break
    if len(capped) < len(kept):
        dropped["learner over their share"] += len(kept) - len(capped)
    return sorted(capped, key=lambda e: e.message_id)


def assemble(store: Store, options: DatasetOptions) -> tuple[dict[str, tuple[list[Example], Counter]], Counter]:
    """Each file's examples as a round would train on them, with what was dropped from it and
    why; and the turns skipped before any example was made."""
    turns = store.labelled_turns()
    found = collect(turns, options)
    if options.planner_pairs:
        from tutor.judge.registry import load_judge

        found.dpo += planner_pairs(turns, options, judge_scorer(store, load_judge()), found.dropped)
    if options.mrbench:
        from tutor.evaluation.mrbench import teacher_pairs

        records, tally = teacher_pairs(options.prompt_format)
        found.dpo += [Example(record, MRBENCH, None, 0) for record in records]
        found.dropped.update({f"mrbench: {what}": count for what, count in tally.items()})
    files = {}
    for name, examples in ((DPO_FILE, found.dpo), (KTO_FILE, found.kto)):
        dropped: Counter = Counter()
        kept = finish(examples, options, dropped)
        files[name] = (hold_length(kept, options.max_length_ratio, dropped) if name == DPO_FILE else kept), dropped
    return files, found.dropped


def words(messages: list[dict]) -> int:
    return sum(len(message["content"].split()) for message in messages)


def length_ratio(pairs: list[dict]) -> float | None:
    """Mean words of the chosen side over the rejected side's, over DPO records (rows as
    written, so a weighted pair counts as often as it trains)."""
    rejected = sum(words(pair["rejected"]) for pair in pairs)
    return sum(words(pair["chosen"]) for pair in pairs) / rejected if rejected else None


def hold_length(pairs: list[Example], max_ratio: float, dropped: Counter) -> list[Example]:
    """Drop pairs, least trusted source first and the most lopsided of it first, until the chosen
    side is on average at most `max_ratio` times as long as the rejected side."""
    def excess(example: Example) -> float:
        return example.weight * (words(example.record["chosen"]) - max_ratio * words(example.record["rejected"]))
    total = sum(excess(example) for example in pairs)
    kept = set(range(len(pairs)))
    for index in sorted(range(len(pairs)), key=lambda i: (-SOURCES.index(pairs[i].source), -excess(pairs[i]))):
        if total <= 0:
            break
        if excess(pairs[index]) > 0:
            kept.discard(index)
            total -= excess(pairs[index])
            dropped[f"chosen over {max_ratio:g}x the rejected length"] += 1
    return [example for index, example in enumerate(pairs) if index in kept]


def build(store: Store, out_dir: Path, options: DatasetOptions) -> dict:
    """Write dpo.jsonl, kto.jsonl and manifest.json (counts by source, what was dropped and why,
    each file's sha256 and one hash of the whole round's data); returns the manifest."""
    files, skipped = assemble(store, options)
    return _write(out_dir, options, files, skipped)


def _write(out_dir: Path, options: DatasetOptions, files: dict[str, tuple[list[Example], Counter]],
           skipped: Counter) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"created": now(), "options": options.to_json(), "files": {}}
    digest = hashlib.sha256()
    for name, (kept, dropped) in files.items():
        path = out_dir / name
        with open(path, "w", encoding="utf-8") as lines:
            for example in kept:
                for _ in range(example.weight):
                    lines.write(json.dumps(example.row(), ensure_ascii=False) + "\n")
        data = path.read_bytes()
        digest.update(data)
        manifest["files"][name] = {
            "examples": len(kept), "rows": sum(e.weight for e in kept),
            "by_source": dict(Counter(e.source for e in kept)),
            "learners": len({e.owner_id for e in kept if e.owner_id is not None}),
            "dropped": dict(dropped), "sha256": hashlib.sha256(data).hexdigest(),
        }
        if name == DPO_FILE:
            ratio = length_ratio([example.record for example in kept for _ in range(example.weight)])
            manifest["files"][name]["chosen_over_rejected_words"] = None if ratio is None else round(ratio, 3)
    manifest["skipped_turns"] = dict(skipped)
    manifest["sha256"] = digest.hexdigest()
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _earlier_wordings(turn: LabelledTurn, by_id: dict[int, LabelledTurn]) -> list[LabelledTurn]:
    """The wordings of this turn the learner asked to hear another way, newest first."""
    found = []
    while (earlier := by_id.get((turn.message.planner_state or {}).get("another_way_of"))) is not None:
        found.append(earlier)
        turn = earlier
    return found


def _completion(move: str | None, text: str, prompt_format: str) -> str:
    return text if prompt_format == INSTRUCT or not move else move_tag(move) + text


def _said(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]

