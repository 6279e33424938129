"""RLHF rounds: DPO on preference pairs, KTO on thumbs-up/down examples (TRL), continuing from
the champion's LoRA adapter. The reference model is the champion itself: TRL keeps a frozen copy
of the loaded adapter ("ref") beside the one it trains. The result is again one LoRA adapter over
the base, served like any other version.

Runs inside the training worker process (never in the web worker): CPU, fp32.
"""

from __future__ import annotations

import json
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tutor.model.loading import MODEL_LOADS
from tutor.training.sft import (TrainResult, TrainSettings, freeze_lower_layers, run_trainer, trainable_adapter,
                                trainer_arguments)

DPO, KTO = "dpo", "kto"
KINDS = (DPO, KTO)  # TRL's preference trainers
# Self-imitation (I2D2): supervised fine-tuning of the champion on its own passing drafts that the
# judge scores well (tutor.training.feedback.imitation)
SELF_IMITATION = "self-imitation"
# Conditional training: SFT of the champion on every rated turn, a bad one under a control line in
# its prompt (tutor.training.feedback.conditional)
CONDITIONAL = "conditional"
SUPERVISED = (SELF_IMITATION, CONDITIONAL)  # rounds that train by SFT, with no reference model
ROUNDS = (*KINDS, *SUPERVISED)  # what a round can be
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
    with MODEL_LOADS:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    model, lora = trainable_adapter(model, settings, champion)  # no champion yet: the base is the reference
    dataset = load_examples(dataset_path, kind)
    common = trainer_arguments(settings, output_dir)
    if kind == DPO:
        from trl import DPOConfig, DPOTrainer

        # batches in this order, as they come: `problem_batches` has shuffled them
        dataset = dataset.select(problem_batches(dataset["prompt"], settings.batch_size, settings.seed))
        args = DPOConfig(**common, beta=preference.beta, train_sampling_strategy="sequential")
        trainer = shared_prompt_dpo(DPOTrainer)(model=model, args=args, train_dataset=dataset,
                                                processing_class=tokenizer, peft_config=lora)
        trainer.upper_layers = settings.upper_layers
        freeze_lower_layers(trainer.model, settings.upper_layers)
        return trainer
    from trl import KTOConfig, KTOTrainer

    dataset = dataset.shuffle(seed=settings.seed)
    desirable = sum(dataset["label"])
    undesirable = len(dataset) - desirable
    if not desirable or not undesirable:
        raise ValueError("KTO needs both 👍 and 👎 examples in the dataset.")
    # KTO's paper: weigh the rarer side up so both contribute alike
    weights = dict(desirable_weight=max(1.0, undesirable / desirable),
                   undesirable_weight=max(1.0, desirable / undesirable))
    trainer = KTOTrainer(model=model, args=KTOConfig(**common, beta=preference.beta, **weights),
                         train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    freeze_lower_layers(trainer.model, settings.upper_layers)
    return trainer


def problem_batches(prompts: list, batch_size: int, seed: int) -> list[int]:
    """An epoch's order of the examples, batch after batch: those about the same problem (their
    prompts' first message: the instructions, the problem and its steps) side by side, so that
    most batches are about one or two problems, whose tokens `PairBatch` then reads once. The
    problems, the examples of each, and the whole batches come in a random order (a short last
    batch stays last, so that every batch begins where the sampler cuts)."""
    rng = random.Random(seed)
    problems: dict[str, list[int]] = {}
    for index, prompt in enumerate(prompts):
        opening = prompt[0] if isinstance(prompt, list) and prompt else prompt
        problems.setdefault(json.dumps(opening, sort_keys=True), []).append(index)
    groups = list(problems.values())
    rng.shuffle(groups)
    for group in groups:
        rng.shuffle(group)
    order = [index for group in groups for index in group]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    whole = [batch for batch in batches if len(batch) == batch_size]
    rng.shuffle(whole)
    return [index for batch in whole + batches[len(whole):] for index in batch]


def shared_prompt_dpo(trainer_class):
    """TRL's DPOTrainer (its data preparation, reference adapter, optimizer and logging) with the
    loss computed on the batch's prefix tree, each shared prompt read once.

    TRL feeds chosen and rejected as two whole padded sequences, so a pair's prompt (the live
    turn's problem, steps and dialogue: ~15 times the length of a reply) is read twice for the
    policy and twice for the reference, padding included, and on a CPU it scores every position
    through the 49k-word head. Here (`PairBatch`) tokens that rows share run once (a pair's
    prompt; the problem of the pairs that `problem_batches` put in one batch), each reply goes
    on from their key/value cache, only the replies' positions are scored, and the layers below
    the trained ones run once for policy and reference alike: the same log-probabilities in a
    fraction of the arithmetic. What stays frozen for the round (those lower layers, the
    reference's upper ones) runs as copies with its adapter merged in (`merged_layers`): no
    adapter products, and no dropout, which TRL would draw there too. Sigmoid DPO loss (TRL's
    default, the rounds' loss).
    """
    import torch
    import torch.nn.functional as F

    class SharedPromptDPOTrainer(trainer_class):
        upper_layers = 0  # the adapter's trained layers (0: all)
        frozen = None  # (the layers below them, the reference's above): copies, their adapter merged in

        def _compute_loss(self, model, inputs, return_outputs=False):
            if self.loss_types != ["sigmoid"] or self.precompute_ref_logps or self.ref_model is not None:
                return super()._compute_loss(model, inputs, return_outputs)
            peft_model = self.accelerator.unwrap_model(self.model)
            pairs = PairBatch(peft_model, inputs, self.upper_layers)
            if self.frozen is None:  # both stay as they are for the whole round
                reference = "ref" if "ref" in peft_model.peft_config else None  # None: the base itself
                self.frozen = (merged_layers(peft_model, 0, pairs.split, peft_model.active_adapter),
                               merged_layers(peft_model, pairs.split, pairs.layers, reference))
            lower, reference = self.frozen
            pairs.run_lower(lower)
            with torch.no_grad():
                ref_chosen, ref_rejected = pairs.logps(reference)
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


LEAF_PADDING = 0.25  # leaves run together while padding adds at most this share to their tokens


@dataclass
class _Node:
    """A run of tokens that some of the batch's rows share, after the tokens of its ancestors: it
    runs once, from their key/value cache, for all those rows. A leaf is one row's own end."""

    start: int  # its first position in the row
    tokens: object  # its token ids
    children: list
    row: int | None = None  # a leaf: the row it ends (its whole rest, completion included)
    hidden: object = None  # an inner node's, after the layers below the trained ones


class PairBatch:
    """TRL's collated preference batch (rows [chosen..., rejected...], right-padded) as a prefix
    tree: every run of tokens that several rows share (the fixed instructions of every prompt, a
    problem that several pairs are about, a pair's whole prompt) is read once, from the key/value
    cache of what it follows; then the rows' own ends (the replies, a few dozen tokens each) in
    padded batches of about one length, each row seeing only its own prefix. The layers below
    the top `upper_layers` (0: none) run once (`run_lower`): they must be the same for every
    adapter `logps` is asked with (frozen, as `freeze_lower_layers` leaves them)."""

    def __init__(self, model, inputs: dict, upper_layers: int = 0):
        base = model.get_base_model()
        self.backbone, self.head = base.model, base.get_output_embeddings()
        self.layers = len(self.backbone.layers)
        self.split = self.layers - upper_layers if 0 < upper_layers < self.layers else 0
        ids, attention, completion = inputs["input_ids"], inputs["attention_mask"], inputs["completion_mask"]
        self.rows = [ids[i][attention[i].bool()] for i in range(ids.size(0))]
        self.targets = [completion[i][attention[i].bool()].bool() for i in range(ids.size(0))]
        # rows share tokens up to the one that predicts their first completion token, not beyond
        bounds = [max(0, (int(t.nonzero()[0]) if t.any() else len(t)) - 1) for t in self.targets]
        self.root = self._tree(list(range(len(self.rows))), 0, bounds)
        self.batches: list[list[_Node]] = []  # the leaves, shortest first, in runs of about one length
        for leaf in sorted(self._leaves(self.root), key=lambda leaf: len(leaf.tokens)):
            together = self.batches[-1] + [leaf] if self.batches else []
            if together and len(leaf.tokens) * len(together) <= (1 + LEAF_PADDING) * sum(len(n.tokens) for n in together):
                self.batches[-1] = together
            else:
                self.batches.append([leaf])
        self.leaf_hidden: list = []  # each batch of leaves after the lower layers (`run_lower`)

    def run_lower(self, lower) -> None:
        """The embeddings and the layers below the split (`lower`: a copy of them, as
        `merged_layers` makes), once, before `logps`."""
        import torch

        embed = self.backbone.embed_tokens
        with torch.no_grad():  # frozen below the split (and the embeddings): no gradient to keep
            def run(node: _Node, cache) -> None:
                node.hidden = self._node(embed(node.tokens[None]), lower, 0, node, cache)

            self.leaf_hidden = self._forward(lower, 0, run, [embed(self._padded(batch)) for batch in self.batches])

    def tokens_read(self) -> int:
        """Positions a pass through the layers reads: the inner nodes' tokens once each, the
        leaves' batches with their padding."""
        def inner(node: _Node) -> int:
            return (len(node.tokens) if node.row is None else 0) + sum(inner(child) for child in node.children)

        return inner(self.root) + sum(len(batch) * max(len(leaf.tokens) for leaf in batch) for batch in self.batches)

    def _tree(self, rows: list[int], start: int, bounds: list[int]) -> _Node:
        """The node of `rows`, which share their tokens before `start`."""
        first = self.rows[rows[0]]
        if len(rows) == 1:
            return _Node(start, first[start:], [], row=rows[0])
        end, limit = start, min(bounds[r] for r in rows)
        while end < limit and all(self.rows[r][end] == first[end] for r in rows):
            end += 1
        branches: dict[int, list[int]] = {}
        for r in rows:  # a row at its bound goes on alone; the others by their next token
            branches.setdefault(-1 - r if bounds[r] == end else int(self.rows[r][end]), []).append(r)
        children = [self._tree(group, end, bounds) for group in branches.values()]
        # leaves first: they only read the cache, which the last child may then extend in place
        return _Node(start, first[start:end], sorted(children, key=lambda child: child.row is None))

    def _leaves(self, node: _Node) -> list[_Node]:
        return [node] if node.row is not None else [leaf for child in node.children for leaf in self._leaves(child)]

    @staticmethod
    def _padded(batch: list[_Node]):
        import torch

        width = max(len(leaf.tokens) for leaf in batch)
        return torch.stack([torch.nn.functional.pad(leaf.tokens, (0, width - len(leaf.tokens))) for leaf in batch])

    def _forward(self, stack, first: int, run, leaf_hidden: list) -> list:
        """The layers `stack` (the model's `first` and on) over the tree: `run(node, cache)` on each
        inner node, parents before children, each with its ancestors' cache; then each batch of
        leaves from its `leaf_hidden`."""
        from transformers import DynamicCache

        last = first + len(stack)
        prefixes = {}  # a leaf's row: its ancestors' keys and values, layer by layer

        def walk(node: _Node, cache) -> None:
            if node.row is not None:
                prefixes[node.row] = [(layer.keys, layer.values) for layer in cache.layers] \
                    if cache.get_seq_length(first) else None
                return
            if len(node.tokens):
                run(node, cache)
            for n, child in enumerate(node.children):
                walk(child, cache if child.row is not None or n == len(node.children) - 1
                     else self._fork(cache, first, last))

        walk(self.root, DynamicCache(config=self.backbone.config))
        return [self._leaf_batch(hidden, stack, first, batch, [prefixes[leaf.row] for leaf in batch])
                for hidden, batch in zip(leaf_hidden, self.batches)]

    def _leaf_batch(self, hidden, stack, first: int, batch: list[_Node], prefixes: list):
        """Leaves through the layers `stack`, each after its own prefix's keys and values (padded
        with zeros to the longest, never seen) and itself causally (its padding at the end)."""
        import torch
        from transformers import DynamicCache

        config = self.backbone.config
        count, width = hidden.shape[:2]
        reach = max(leaf.start for leaf in batch)
        cache = DynamicCache(config=config)
        if reach:
            none = torch.zeros(1, config.num_key_value_heads, 0,
                               getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
            for index in range(first, first + len(stack)):
                keys, values = ([torch.nn.functional.pad(prefix[index][side] if prefix else none,
                                                         (0, 0, 0, reach - leaf.start))
                                 for prefix, leaf in zip(prefixes, batch)] for side in (0, 1))
                cache.update(torch.cat(keys), torch.cat(values), index)
        starts = torch.tensor([leaf.start for leaf in batch])
        positions = starts[:, None] + torch.arange(width)[None]
        sees = torch.cat([torch.arange(reach)[None] < starts[:, None], torch.ones(count, width, dtype=torch.bool)], 1)
        mask = sees[:, None, None, :] & torch.ones(width, reach + width, dtype=torch.bool).tril(reach)
        return self._layers(hidden, stack, positions, mask, cache)

    def _fork(self, cache, first: int, last: int):
        """A copy of a key/value cache (its layers [first, last)) for a branch to go on from apart."""
        from transformers import DynamicCache

        fork = DynamicCache(config=self.backbone.config)
        if cache.get_seq_length(first):
            for index in range(first, last):
                fork.update(cache.layers[index].keys, cache.layers[index].values, index)
        return fork

    def _node(self, hidden, stack, first: int, node: _Node, cache, *, keys_at_last: bool = False):
        """An inner node through the layers `stack`: it sees its ancestors' tokens and itself
        causally. `keys_at_last`: the last layer only leaves its keys and values in the cache (the
        node's hidden states after the top layer are never used: it predicts no completion token)."""
        import torch

        width = len(node.tokens)
        positions = torch.arange(node.start, node.start + width)[None]
        mask = torch.ones(width, node.start + width, dtype=torch.bool).tril(node.start)[None, None] if node.start else None
        store = _keys_values_of(stack[-1]) if keys_at_last else None
        if store is None:
            return self._layers(hidden, stack, positions, mask, cache)
        hidden = self._layers(hidden, stack[:-1], positions, mask, cache)
        store(hidden, self.backbone.rotary_emb(hidden, position_ids=positions), cache)
        return None

    def _layers(self, hidden, stack, positions, mask, cache):
        rotary = self.backbone.rotary_emb(hidden, position_ids=positions)
        for layer in stack:
            hidden = layer(hidden, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, position_embeddings=rotary)
        return hidden

    def logps(self, upper=None):
        """(chosen, rejected): each row's summed log-probabilities of its completion tokens, through
        the layers above the split: `upper` (a copy of them, as `merged_layers` makes) or the
        model's own with the adapter active now."""
        import torch

        upper = upper if upper is not None else self.backbone.layers[self.split:]

        def run(node: _Node, cache) -> None:
            self._node(node.hidden, upper, self.split, node, cache, keys_at_last=True)

        sums = {}
        for hidden, batch in zip(self._forward(upper, self.split, run, self.leaf_hidden), self.batches):
            for n, leaf in enumerate(batch):
                # a leaf's position j is the row's position start + j: it predicts the row's next token
                positions = self.targets[leaf.row][leaf.start + 1:].nonzero().squeeze(1)
                logits = self.head(self.backbone.norm(hidden[n, positions]))
                sums[leaf.row] = torch.log_softmax(logits.float(), dim=-1).gather(
                    1, self.rows[leaf.row][leaf.start + 1 + positions][:, None]).sum()
        count = len(self.rows) // 2
        return (torch.stack([sums[i] for i in range(count)]),
                torch.stack([sums[i] for i in range(count, 2 * count)]))


def _keys_values_of(layer):
    """For a Llama-style decoder layer, a function (hidden, rotary, cache) that leaves the layer's
    keys and values of those hidden states in the cache, as its attention would, and does nothing
    else (no queries, attention or MLP); None for other layers."""
    import sys

    attention = getattr(layer, "self_attn", None)
    rotate = getattr(sys.modules[type(attention).__module__], "apply_rotary_pos_emb", None)
    if (rotate is None or not all(hasattr(attention, name) for name in ("k_proj", "v_proj", "head_dim", "layer_idx"))
            or hasattr(attention, "k_norm") or not hasattr(layer, "input_layernorm")):
        return None

    def store(hidden, rotary, cache) -> None:
        normed = layer.input_layernorm(hidden)
        shape = (*normed.shape[:-1], -1, attention.head_dim)
        keys = attention.k_proj(normed).view(shape).transpose(1, 2)
        values = attention.v_proj(normed).view(shape).transpose(1, 2)
        _, keys = rotate(keys, keys, *rotary)
        cache.update(keys, values, attention.layer_idx)

    return store


def merged_layers(model, first: int, last: int, adapter: str | None):
    """A plain copy of a peft model's layers [first, last) with `adapter` merged into their weights
    (None: the base's own weights): what those layers compute with that adapter active, without
    the adapter's own products or dropout. For layers that stay as they are."""
    import copy

    from peft.tuners.lora import LoraLayer

    layers = copy.deepcopy(model.get_base_model().model.layers[first:last])
    for name, module in list(layers.named_modules()):
        if isinstance(module, LoraLayer):
            if adapter is not None:
                module.merge(adapter_names=[adapter])
            parent, _, attribute = name.rpartition(".")
            setattr(layers.get_submodule(parent), attribute, module.get_base_layer())
    return layers.requires_grad_(False).eval()
