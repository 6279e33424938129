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
    scratch = tempfile.TemporaryDirectory(prefix="tutor-round-")
    trainer = preference_trainer(kind, base_path, champion, dataset_path, settings, preference, scratch.name)
    return run_trainer(trainer, out_dir, scratch, on_progress, should_stop)


def preference_trainer(kind: str, base_path: Path, champion: Path | None, dataset_path: Path,
                       settings: TrainSettings, preference: PreferenceSettings, output_dir: str):
    """The TRL trainer of a round, ready to train: the champion's adapter trainable, its frozen
    copy the reference."""
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
    common = trainer_arguments(settings, output_dir)
    if kind == DPO:
        from trl import DPOConfig, DPOTrainer

        trainer = shared_prompt_dpo(DPOTrainer)(model=model, args=DPOConfig(**common, beta=preference.beta),
                                                train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
        trainer.upper_layers = settings.upper_layers
        freeze_lower_layers(trainer.model, settings.upper_layers)
        return trainer
    from trl import KTOConfig, KTOTrainer

    desirable = sum(dataset["label"])
    undesirable = len(dataset) - desirable
    if not desirable or not undesirable:
        raise ValueError("KTO needs both 👍 and 👎 examples in the dataset.")
    # KTO's paper: weigh the rarer side up so both contribute alike
    weights = dict(desirable_weight=max(1.0, undesirable / desirable),
                   undesirable_weight=max(1.0, desirable / undesirable))
    return KTOTrainer(model=model, args=KTOConfig(**common, beta=preference.beta, **weights),
                      train_dataset=dataset, processing_class=tokenizer, peft_config=lora)


def shared_prompt_dpo(trainer_class):
    """TRL's DPOTrainer (its data preparation, reference adapter, optimizer and logging) with the
    loss computed pair by pair, each pair's prompt read once.

    TRL feeds chosen and rejected as two whole padded sequences, so a pair's prompt (the live
    turn's problem, steps and dialogue: ~15 times the length of a reply) is read twice for the
    policy and twice for the reference, padding included, and on a CPU it scores every position
    through the 49k-word head. Here (`PairBatch`) a pair's shared tokens run once, the two replies
    go on from their key/value cache, only the replies' positions are scored, and the layers
    below the trained ones run once for policy and reference alike: the same log-probabilities
    in a fraction of the arithmetic. Sigmoid DPO loss (TRL's default, the rounds' loss).
    """
    import torch
    import torch.nn.functional as F
    from trl.trainer.utils import use_adapter

    class SharedPromptDPOTrainer(trainer_class):
        upper_layers = 0  # the adapter's trained layers (0: all)

        def _compute_loss(self, model, inputs, return_outputs=False):
            if self.loss_types != ["sigmoid"] or self.precompute_ref_logps or self.ref_model is not None:
                return super()._compute_loss(model, inputs, return_outputs)
            peft_model = self.accelerator.unwrap_model(self.model)
            pairs = PairBatch(peft_model, inputs, self.upper_layers)
            with torch.no_grad(), use_adapter(peft_model, "ref" if "ref" in peft_model.peft_config else None):
                ref_chosen, ref_rejected = pairs.logps()
            freeze_lower_layers(peft_model, self.upper_layers)  # switching adapters made all of it trainable
            chosen, rejected = pairs.logps()
            chosen_rewards = self.beta * (chosen - ref_chosen)
            rejected_rewards = self.beta * (rejected - ref_rejected)
            loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
            mode = "train" if self.model.training else "eval"
            chosen_rewards, rejected_rewards = chosen_rewards.detach(), rejected_rewards.detach()
            for name, value in (("rewards/chosen", chosen_rewards.mean()), ("rewards/rejected", rejected_rewards.mean()),
                                ("rewards/accuracies", (chosen_rewards > rejected_rewards).float().mean()),
                                ("rewards/margins", (chosen_rewards - rejected_rewards).mean()),
                                ("logps/chosen", chosen.detach().mean()), ("logps/rejected", rejected.detach().mean())):
                self._metrics[mode][name].append(value.item())
            if return_outputs:
                raise ValueError("the shared-prompt DPO loss computes no logits to return")
            return loss

    return SharedPromptDPOTrainer


@dataclass
class _Stem:
    """One pair after the layers below the trained ones: what `PairBatch.logps` goes on from."""

    shared: int  # tokens of the common prefix
    tails: list  # each row's token ids after the prefix
    targets: list  # each row's completion mask (whole row)
    prefix: object  # the prefix's hidden states (None: no common prefix)
    tail: object  # the two tails' hidden states, right-padded to one width
    tail_mask: object  # which positions each tail position sees (the prefix, itself causally)


class PairBatch:
    """TRL's collated preference batch (rows [chosen..., rejected...], right-padded) as pairs,
    each pair's longest common token prefix run once and its two rows going on from that cache.
    The layers below the top `upper_layers` (0: none) run once, at construction: they must be
    the same for every adapter `logps` is asked with (frozen, as `freeze_lower_layers` leaves them)."""

    def __init__(self, model, inputs: dict, upper_layers: int = 0):
        import torch

        base = model.get_base_model()
        self.backbone, self.head = base.model, base.get_output_embeddings()
        layers = len(self.backbone.layers)
        self.split = layers - upper_layers if 0 < upper_layers < layers else 0
        ids, attention, completion = inputs["input_ids"], inputs["attention_mask"], inputs["completion_mask"]
        count = ids.size(0) // 2
        self.pairs = []
        with torch.no_grad():  # frozen below the split (and the embeddings): no gradient to keep
            for pair in range(count):
                rows = [ids[i][attention[i].bool()] for i in (pair, pair + count)]
                targets = [completion[i][attention[i].bool()].bool() for i in (pair, pair + count)]
                self.pairs.append(self._stem(rows, targets))

    def _stem(self, rows, targets) -> _Stem:
        """A pair's common prefix and its two tails, through the embeddings and the lower layers."""
        import torch
        from transformers import DynamicCache

        # the prefix ends before the token that predicts either row's first completion token
        first = min(int(t.nonzero()[0]) if t.any() else len(t) for t in targets)
        shared, limit = 0, min(first - 1, *(len(r) for r in rows))
        while shared < limit and rows[0][shared] == rows[1][shared]:
            shared += 1
        tails = [row[shared:] for row in rows]
        width = max(len(t) for t in tails)
        tail_ids = torch.stack([torch.nn.functional.pad(t, (0, width - len(t))) for t in tails])
        # each tail sees the whole prefix and itself causally; padding is at the right, never seen
        tail_mask = torch.ones(width, shared + width, dtype=torch.bool).tril(diagonal=shared)[None, None]
        cache = DynamicCache(config=self.backbone.config)
        prefix = None
        if shared:
            prefix = self._layers(self.backbone.embed_tokens(rows[0][None, :shared]), 0, self.split,
                                  torch.arange(shared)[None], None, cache)
            cache.batch_repeat_interleave(2)
        tail = self._layers(self.backbone.embed_tokens(tail_ids), 0, self.split,
                            torch.arange(shared, shared + width)[None], tail_mask, cache)
        return _Stem(shared, tails, targets, prefix, tail, tail_mask)

    def _layers(self, hidden, start: int, end: int, positions, mask, cache):
        rotary = self.backbone.rotary_emb(hidden, position_ids=positions)
        for layer in self.backbone.layers[start:end]:
            hidden = layer(hidden, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, position_embeddings=rotary)
        return hidden

    def logps(self):
        """(chosen, rejected): each row's summed log-probabilities of its completion tokens, through
        the upper layers with the adapter active now."""
        import torch
        from transformers import DynamicCache

        sums = []
        layers = len(self.backbone.layers)
        for stem in self.pairs:
            shared, cache = stem.shared, DynamicCache(config=self.backbone.config)
            if shared:
                self._layers(stem.prefix, self.split, layers, torch.arange(shared)[None], None, cache)
                cache.batch_repeat_interleave(2)
            width = stem.tail.size(1)
            hidden = self._layers(stem.tail, self.split, layers, torch.arange(shared, shared + width)[None],
                                  stem.tail_mask, cache)
            hidden = self.backbone.norm(hidden)
            for side, (tail, target) in enumerate(zip(stem.tails, stem.targets)):
                positions = target[shared + 1:].nonzero().squeeze(1)  # tail position j predicts tail token j + 1
                logits = self.head(hidden[side, positions])
                sums.append(torch.log_softmax(logits.float(), dim=-1).gather(1, tail[positions + 1][:, None]).sum())
        return torch.stack(sums[0::2]), torch.stack(sums[1::2])


def freeze_lower_layers(model, upper_layers: int) -> None:
    """Train the adapter's top `upper_layers` layers only: below them nothing needs a gradient, so
    the backward pass stops there. 0: every layer trains."""
    import re

    if upper_layers <= 0:
        return
    layers = model.get_base_model().config.num_hidden_layers
    for name, parameter in model.named_parameters():
        found = re.search(r"\.layers\.(\d+)\.", name)
        if parameter.requires_grad and found and int(found.group(1)) < layers - upper_layers:
            parameter.requires_grad_(False)
