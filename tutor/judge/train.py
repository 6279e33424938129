"""Train a judge in two stages, on the rows `data.py` builds.

1. The encoder: a LoRA on the packaged MiniLM and provisional heads, on every source (MRBench's
   training conversations, contrast pairs, MathDial turns, the store's verdicts). A short loop
   of our own rather than a `Trainer`: eight outputs, each a masked loss (a row labels only what
   its source can say); sentence-transformers' CrossEncoder trains one label a row.
2. The heads, again: a logistic regression per dimension on the trained encoder's features of
   the annotated MRBench responses alone, its regularisation chosen by cross-validation over
   training conversations (never the validation split). The heads of stage 1 learned the
   sources' mix of classes (contrast pairs are mostly "No"); the annotators' mix is what
   macro F1 on MRBench rewards (on j1's encoder: mistake identification 0.52 with its own
   heads, 0.67 refitted; bench/README).

`parent`: stage 2 alone on an existing judge's encoder (new reviews, cheap).
Progress (step, loss, ETA) and cancelling work as a student's run does.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from tutor.judge.data import DIMENSIONS, SHORT, Row
from tutor.training.sft import Cancelled


@dataclass(frozen=True)
class JudgeSettings:
    epochs: float = 2.0
    learning_rate: float = 3e-4  # LoRA and fresh heads: a high rate, warmed up, decayed
    heads_learning_rate: float = 1e-3
    batch_size: int = 16
    lora_rank: int = 16
    lora_layers: int = 4  # of MiniLM's 6, the top ones
    max_length: int = 256
    head_c: tuple[float, ...] = (0.1, 0.3, 1.0)  # stage 2's inverse regularisation, chosen by CV per dimension
    seed: int = 0
    max_steps: int | None = None  # tests and quick tries

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> JudgeSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known | ({"head_c": tuple(known["head_c"])} if "head_c" in known else {}))


@dataclass
class JudgeTrainResult:
    steps: int
    seconds: float
    final_loss: float | None
    losses: list[float] = field(default_factory=list)
    heads: dict | None = None  # stage 2's choice per dimension (C, class weighting, its CV macro F1)
    head_cv_macro_f1: float | None = None  # the mean over the dimensions

    def to_json(self) -> dict:
        return asdict(self)


def class_weights(rows: list[Row]) -> list[list[float]]:
    """Per dimension, rarer classes weigh more (inverse square root of frequency): macro F1
    counts "To some extent" as much as "Yes"."""
    weights = []
    for dimension, classes in DIMENSIONS.items():
        counts = Counter(row.labels.get(dimension) for row in rows)
        total = sum(counts[name] for name in classes) or 1
        raw = [math.sqrt(total / max(counts[name], 1)) for name in classes]
        mean = sum(raw) / len(raw)
        weights.append([w / mean for w in raw])
    return weights


def train_judge(rows: list[Row], out: Path, settings: JudgeSettings = JudgeSettings(), base: Path | None = None,
                on_progress: Callable[[dict], None] = lambda _: None,
                should_stop: Callable[[], bool] = lambda: False, parent: Path | None = None) -> JudgeTrainResult:
    import shutil

    import torch

    from tutor.judge.model import ADAPTER_DIR, judge_base, load_net, new_net, save

    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    if parent is not None:  # stage 2 alone, on the parent's encoder
        net, tokenizer = load_net(parent, base or judge_base(parent), heads=False)
        steps, losses = 0, []
    else:
        net, tokenizer = new_net(base, settings.lora_rank, settings.lora_layers)
        steps, losses = train_encoder(net, tokenizer, rows, settings, on_progress, should_stop)
    net.eval()
    on_progress({"message": "fitting the heads on the annotated responses"})
    heads, cv = refit_heads(net, tokenizer, [row for row in rows if row.source == "mrbench"], settings)
    if parent is not None:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(parent / ADAPTER_DIR, out / ADAPTER_DIR)
        from safetensors.torch import save_file

        from tutor.judge.model import HEADS_FILE
        save_file({f"heads.{k}": v.contiguous() for k, v in net.heads.state_dict().items()}, str(out / HEADS_FILE))
    else:
        save(net, out)
    return JudgeTrainResult(steps, round(time.perf_counter() - started, 1), losses[-1] if losses else None, losses,
                            heads, cv)


def train_encoder(net, tokenizer, rows: list[Row], settings: JudgeSettings, on_progress, should_stop):
    """Stage 1: the LoRA and provisional heads, a masked cross-entropy per dimension."""
    import torch
    from torch.nn import functional

    from tutor.judge.model import inputs_for

    rng = random.Random(settings.seed)
    net.train()
    steps_per_epoch = math.ceil(len(rows) / settings.batch_size)
    total = settings.max_steps or max(1, round(settings.epochs * steps_per_epoch))
    lora_parameters = [p for name, p in net.encoder.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": lora_parameters, "lr": settings.learning_rate},
                                   {"params": list(net.heads.parameters()), "lr": settings.heads_learning_rate}],
                                  weight_decay=0.01)
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / max(1, total - warmup)))
    weights = torch.tensor(class_weights(rows))
    started, losses, step = time.perf_counter(), [], 0
    order: list[Row] = []
    while step < total:
        if not order:
            order = rows[:]
            rng.shuffle(order)
        batch, order = order[:settings.batch_size], order[settings.batch_size:]
        logits = net(**inputs_for(tokenizer, [(row.exchange, row.response) for row in batch], settings.max_length))
        loss = torch.zeros(())
        for index, (dimension, classes) in enumerate(DIMENSIONS.items()):
            targets = torch.tensor([classes.index(row.labels[dimension]) if row.labels.get(dimension) in classes
                                    else -100 for row in batch])
            if (targets >= 0).any():
                loss = loss + functional.cross_entropy(logits[:, index], targets, weight=weights[index],
                                                       ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        losses.append(round(loss.item(), 4))
        elapsed = time.perf_counter() - started
        on_progress({"step": step, "total_steps": total, "loss": losses[-1],
                     "eta_s": round(elapsed / step * (total - step))})
        if should_stop():
            raise Cancelled(f"cancelled at step {step} of {total}; nothing was saved")
    return step, losses


def refit_heads(net, tokenizer, rows: list[Row], settings: JudgeSettings) -> tuple[dict | None, float | None]:
    """Stage 2: per dimension, a multinomial logistic regression on the encoder's features of the
    annotated rows, written into the network's heads. Each dimension's regularisation C and
    class weighting (none, or balanced: macro F1 counts a rare class as much as a common one) are
    chosen by 5-fold cross-validation grouped by conversation. Returns each dimension's choice
    with its CV macro F1, and their mean."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold

    from tutor.judge.model import inputs_for

    if len({row.group or row.conversation for row in rows}) < 5:
        return None, None  # too few to fit or choose anything: the stage-1 heads stay
    with torch.inference_mode():
        features = np.vstack([net.features(**inputs_for(tokenizer, [(r.exchange, r.response)
                                                                    for r in rows[i:i + 32]], settings.max_length)
                                           ).numpy() for i in range(0, len(rows), 32)])
    groups = [row.group or row.conversation for row in rows]
    grid = [(c, weighting) for c in settings.head_c for weighting in (None, "balanced")]

    def fit(choice: tuple, index: list[int], dimension: str):
        targets = [rows[i].labels[dimension] for i in index]
        if len(set(targets)) < 2:
            return None
        return LogisticRegression(C=choice[0], class_weight=choice[1], max_iter=3000).fit(features[index], targets)

    def cv_score(choice: tuple, dimension: str, index: list[int]) -> float:
        truth, guess = [], []
        for train, held in GroupKFold(n_splits=5).split(index, groups=[groups[i] for i in index]):
            model = fit(choice, [index[i] for i in train], dimension)
            if model is not None:
                truth += [rows[index[i]].labels[dimension] for i in held]
                guess += list(model.predict(features[[index[i] for i in held]]))
        return f1_score(truth, guess, average="macro", labels=sorted(set(truth)), zero_division=0) if truth else 0.0

    weight = net.heads.weight.detach().clone()
    bias = net.heads.bias.detach().clone()
    chosen = {}
    for slot, (dimension, classes) in enumerate(DIMENSIONS.items()):
        index = [i for i, row in enumerate(rows) if row.labels.get(dimension) in classes]
        if len({groups[i] for i in index}) < 5:
            continue  # the stage-1 head stays
        scores = {choice: cv_score(choice, dimension, index) for choice in grid}
        best = max(scores, key=scores.get)
        model = fit(best, index, dimension)
        if model is None:
            continue
        chosen[SHORT[dimension]] = {"C": best[0], "class_weight": best[1], "cv_macro_f1": round(scores[best], 4)}
        coefficients = model.coef_ if len(model.classes_) > 2 else np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
        intercepts = model.intercept_ if len(model.classes_) > 2 else np.array([-model.intercept_[0] / 2,
                                                                                 model.intercept_[0] / 2])
        weight[3 * slot:3 * slot + 3] = 0.0
        bias[3 * slot:3 * slot + 3] = -30.0  # a class nobody used is never predicted
        for row, name in enumerate(model.classes_):
            target = 3 * slot + classes.index(name)
            weight[target] = torch.tensor(coefficients[row], dtype=weight.dtype)
            bias[target] = float(intercepts[row])
    with torch.no_grad():
        net.heads.weight.copy_(weight)
        net.heads.bias.copy_(bias)
    if not chosen:
        return None, None
    return chosen, round(float(np.mean([c["cv_macro_f1"] for c in chosen.values()])), 4)
