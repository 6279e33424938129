"""DPO round throughput on the embedded student: tokens/s and the projected time of a 500-pair round,
beside TRL's own DPOTrainer as it comes, on the same pairs, in the same run.

    python -m bench.train [--data-dir DIR] [--steps 4] [--baseline-steps 1] [--pairs 500]

Trains the served champion with the round's own settings (`round_config`) for a few steps on
`--pairs` preference pairs shaped like a round's (the served prompt format over human teacher
dialogues; a teacher turn chosen over the same dialogue's shorter one, so a dialogue's problem
comes in several pairs, as a transcript's rewritten turns do), in the round's batch order, in
this process, and projects the whole round from the median step time after the first
(warm-up) step. The baseline is TRL's stock DPOTrainer (activation checkpointing on, as TRL's
configs default, whole padded sequences, shuffled).
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
from tutor.training.preference import DPO, PreferenceSettings, load_examples, preference_trainer
from tutor.training.runs import round_config
from tutor.training.sft import TrainSettings, run_trainer, trainable_adapter, trainer_arguments

GOAL_MINUTES = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps timed (after one warm-up step)")
    parser.add_argument("--baseline-steps", type=int, default=1, help="the same for TRL's stock trainer (0: skip)")
    parser.add_argument("--pairs", type=int, default=500, help="the round size projected")
    args = parser.parse_args()
    base = provision_embedded(args.data_dir or default_data_dir())
    config = round_config()
    settings = TrainSettings.from_json(config["train"])
    preference = PreferenceSettings(**config["preference"])
    with tempfile.TemporaryDirectory() as scratch:
        registry = Registry(MODELS_DIR, Store(Path(scratch) / "bench.db"))
        champion = registry.resolve("champion", progress=lambda _: None)
        fmt = registry.prompt_format("champion")
        pairs = round_pairs(fmt, args.pairs)  # the whole round's: which pairs share a batch depends on all of them
        dataset = Path(scratch) / "dpo.jsonl"
        dataset.write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")

        def timed(build, steps: int) -> tuple[float, list[float]]:
            """(setup seconds, seconds of each step after the first) of a trainer built by `build`."""
            run_settings = TrainSettings.from_json(settings.to_json() | {"max_steps": steps + 1})
            work = tempfile.TemporaryDirectory(dir=scratch)
            stamps: list[float] = []
            started = time.perf_counter()
            trainer = build(run_settings, work.name)
            run_trainer(trainer, Path(work.name) / "out", work, lambda _: stamps.append(time.perf_counter()))
            durations = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
            first = stamps[0] - started
            return first - statistics.median(durations), durations  # loading, preparation (the first step apart)

        ours = timed(lambda s, out: preference_trainer(DPO, base, champion, dataset, s, preference, out), args.steps)
        stock = (timed(lambda s, out: trl_stock_trainer(base, champion, dataset, s, preference, out), args.baseline_steps)
                 if args.baseline_steps else None)
    tokens = statistics.mean(pair_tokens(base, pairs))
    round_steps = -(-args.pairs // settings.batch_size)

    def figures(setup: float, durations: list[float]) -> tuple[float, float, float]:
        per_step = statistics.median(durations)
        return per_step, tokens * settings.batch_size / per_step, (setup + round_steps * per_step) / 60

    print(f"\nchampion: {champion.name if champion else 'base'} ({fmt} format)  batch {settings.batch_size} pairs  "
          f"{tokens:.0f} tokens a pair (prompt twice, chosen, rejected)  trained layers: "
          f"{settings.upper_layers or 'all'} (top)")
    rows = [("round trainer (served)", ours)] + ([("TRL DPOTrainer, stock", stock)] if stock else [])
    for name, (setup, durations) in rows:
        per_step, speed, minutes = figures(setup, durations)
        print(f"{name:<26} steps {', '.join(f'{s:.1f}' for s in durations)} s (median {per_step:.1f})  "
              f"setup {setup:.0f} s  {speed:.0f} tok/s  {args.pairs}-pair round ≈ {minutes:.0f} min")
    per_step, speed, minutes = figures(*ours)
    print(f"(goal ≤ {GOAL_MINUTES} min)\n")
    print(f"train_tokens_per_s: {speed:.0f}")
    print(f"step_s: {per_step:.1f}")
    print(f"round_minutes_{args.pairs}: {minutes:.1f}")
    if stock:
        stock_step, stock_speed, stock_minutes = figures(*stock)
        print(f"trl_stock_tokens_per_s: {stock_speed:.0f}")
        print(f"trl_stock_round_minutes_{args.pairs}: {stock_minutes:.0f}")
        print(f"speedup_vs_trl_stock: {stock_step / per_step:.1f}")


def trl_stock_trainer(base: Path, champion: Path | None, dataset: Path, settings: TrainSettings,
                      preference: PreferenceSettings, output_dir: str):
    """The baseline: TRL's DPOTrainer as it comes on the same model, adapter and pairs (its
    default activation checkpointing, every layer of the adapter trained)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model, lora = trainable_adapter(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), settings, champion)
    args = DPOConfig(**trainer_arguments(settings, output_dir) | {"activation_checkpointing": True}, beta=preference.beta)
    return DPOTrainer(model=model, args=args, train_dataset=load_examples(dataset, DPO).shuffle(seed=settings.seed),
                      processing_class=tokenizer, peft_config=lora)


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
