"""RLHF rounds: DPO on preference pairs, KTO on thumbs-up/down examples (TRL), continuing from
the champion's LoRA adapter. The reference model is the champion itself: TRL keeps a frozen copy
of the loaded adapter ("ref") beside the one it trains. The result is again one LoRA adapter over
the base, served like any other version.

Runs inside the training worker process (never in the web worker): CPU, fp32.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tutor.training.sft import TrainResult, TrainSettings, run_trainer, trainable_adapter, trainer_arguments

DPO, KTO = "dpo", "kto"
KINDS = (DPO, KTO)
FIELDS = {DPO: ("prompt", "chosen", "rejected"), KTO: ("prompt", "completion", "label")}


@dataclass
class PreferenceSettings:
    beta: float = 0.1  # how far the candidate may move from the champion (higher: less)

    def to_json(self) -> dict:
        return {"beta": self.beta}


def load_examples(path: Path, kind: str):
    """A feedback dataset file as a shuffled-ready `datasets.Dataset` of TRL's fields only."""
    from datasets import Dataset

    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    if not records:
        raise ValueError(f"{path} holds no examples: nothing to train on.")
    return Dataset.from_list([{key: record[key] for key in FIELDS[kind]} for record in records])


def train_preference(kind: str, base_path: Path, champion: Path | None, dataset_path: Path, out_dir: Path,
                     settings: TrainSettings, preference: PreferenceSettings = PreferenceSettings(),
                     on_progress: Callable[[dict], None] = lambda _: None,
                     should_stop: Callable[[], bool] = lambda: False) -> TrainResult:
    """Train the champion's adapter further on the dataset; save it to `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if kind not in KINDS:
        raise ValueError(f"Unknown round kind {kind!r}: {' or '.join(KINDS)}.")
    torch.manual_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_path)  # its own chat template: the served prompt
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    model, lora = trainable_adapter(model, settings, champion)  # no champion yet: the base is the reference
    dataset = load_examples(dataset_path, kind).shuffle(seed=settings.seed)
    scratch = tempfile.TemporaryDirectory(prefix="tutor-round-")
    common = trainer_arguments(settings, scratch.name)
    if kind == DPO:
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, args=DPOConfig(**common, beta=preference.beta), train_dataset=dataset,
                             processing_class=tokenizer, peft_config=lora)
    else:
        from trl import KTOConfig, KTOTrainer

        desirable = sum(dataset["label"])
        undesirable = len(dataset) - desirable
        if not desirable or not undesirable:
            raise ValueError("KTO needs both 👍 and 👎 examples in the dataset.")
        # KTO's paper: weigh the rarer side up so both contribute alike
        weights = dict(desirable_weight=max(1.0, undesirable / desirable),
                       undesirable_weight=max(1.0, desirable / undesirable))
        trainer = KTOTrainer(model=model, args=KTOConfig(**common, beta=preference.beta, **weights),
                             train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    return run_trainer(trainer, out_dir, scratch, on_progress, should_stop)
