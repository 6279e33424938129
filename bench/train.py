"""DPO round throughput on the embedded student: tokens/s and the projected time of a 500-pair round.

    python -m bench.train [--data-dir DIR] [--steps 4] [--pairs 500]

Trains the served champion with the round's own settings (`round_config`) for a few steps of
TRL's DPOTrainer on preference pairs shaped like a round's (moves-format prompts of human
teacher dialogues; a teacher turn chosen over a shorter one), in this process, and projects a
round of `--pairs` pairs from the median step time after the first (warm-up) step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tutor.config import DIALOGUES_FILE, MODELS_DIR, default_data_dir
from tutor.domain.prompting import MOVES_HISTORY_TURNS
from tutor.evaluation.data import load_eval_dialogues, split
from tutor.model.embedded import provision_embedded
from tutor.model.registry import Registry
from tutor.storage.store import Store
from tutor.training.distill import DistillReport, human_records
from tutor.training.preference import DPO, PreferenceSettings, train_preference
from tutor.training.runs import round_config
from tutor.training.sft import TrainSettings

GOAL_MINUTES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps timed (after one warm-up step)")
    parser.add_argument("--pairs", type=int, default=500, help="the round size projected")
    args = parser.parse_args()
    data_dir = args.data_dir or default_data_dir()
    base = provision_embedded(data_dir)
    config = round_config()
    settings = TrainSettings.from_json(config["train"])
    with tempfile.TemporaryDirectory() as scratch:
        registry = Registry(MODELS_DIR, Store(Path(scratch) / "bench.db"))
        champion = registry.resolve("champion", progress=lambda _: None)
        fmt = registry.prompt_format("champion")
        pairs = round_pairs(fmt, settings.batch_size * (args.steps + 1))
        dataset = Path(scratch) / "dpo.jsonl"
        dataset.write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")
        stamps: list[float] = []
        started = time.perf_counter()
        train_preference(DPO, base, champion, dataset, Path(scratch) / "out",
                         TrainSettings.from_json(config["train"] | {"max_steps": args.steps + 1}),
                         PreferenceSettings(**config["preference"]),
                         on_progress=lambda _: stamps.append(time.perf_counter()))
        total = time.perf_counter() - started
    tokens = pair_tokens(base, pairs)
    steps = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
    per_step = statistics.median(steps)
    tokens_per_step = statistics.mean(tokens) * settings.batch_size
    round_steps = -(-args.pairs // settings.batch_size)
    setup = total - sum(steps) - per_step  # loading, dataset preparation (the first step counted apart)
    minutes = (setup + round_steps * per_step) / 60
    print(f"\nchampion: {champion.name if champion else 'base'} ({fmt} format)  batch {settings.batch_size} pairs  "
          f"{statistics.mean(tokens):.0f} tokens a pair (prompt twice, chosen, rejected)")
    print(f"step seconds: {', '.join(f'{s:.1f}' for s in steps)}  (median {per_step:.1f})  setup {setup:.0f} s")
    print(f"a {args.pairs}-pair round: {round_steps} steps ≈ {minutes:.0f} min (goal ≤ {GOAL_MINUTES} min)")
    print(f"\ntrain_tokens_per_s: {tokens_per_step / per_step:.0f}")
    print(f"step_s: {per_step:.1f}")
    print(f"round_minutes_{args.pairs}: {minutes:.0f}")


def round_pairs(prompt_format: str, count: int) -> list[dict]:
    """DPO pairs shaped like a round's: a human teacher turn (move tag and words) chosen over the
    same dialogue's previous, shorter turn, after the conversation so far as a live turn shows it."""
    pairs: list[dict] = []
    records = human_records(split(load_eval_dialogues(DIALOGUES_FILE), "train"), DistillReport(),
                            prompt_format=prompt_format)
    for record in records:
        messages = record["messages"]
        turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        for earlier, index in zip(turns, turns[1:]):
            chosen, other = messages[index]["content"], messages[earlier]["content"]
            if messages[index]["train"] and len(other) < len(chosen):
                # as a live turn's prompt: the problem, then the recent turns only
                recent = messages[max(1, index - MOVES_HISTORY_TURNS):index]
                prompt = [{"role": m["role"], "content": m["content"]} for m in messages[:1] + recent]
                pairs.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                              "rejected": [{"role": "assistant", "content": other}]})
                if len(pairs) == count:
                    return pairs
    return pairs


def pair_tokens(base: Path, pairs: list[dict]) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    def length(messages: list[dict]) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return [length(pair["prompt"] + pair["chosen"]) + length(pair["prompt"] + pair["rejected"]) for pair in pairs]


if __name__ == "__main__":
    main()
