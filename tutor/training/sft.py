"""LoRA supervised fine-tuning of the student with TRL, and logit distillation (GKD) from a teacher.

Runs inside the training worker process (never in the web worker): CPU only here, fp32, no
gradient checkpointing.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from tutor.model.loading import MODEL_LOADS

# ChatML (the embedded SmolLM2's template, which renders the same text) with TRL's generation
# markers around tutor turns, so the loss falls on them only; a turn marked "train": false is
# context, not a target. The end-of-turn token is inside the markers: the student learns to stop.
TRAINING_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' and message['train'] != false -%}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainSettings:
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 4
    gradient_accumulation: int = 1
    max_length: int = 1024  # tokens; a whole MathDial dialogue in the moves format is ~600
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = LINEAR_MODULES
    max_steps: int = -1  # >0: stop after this many optimizer steps (tests, smoke runs)
    upper_layers: int = 0  # rounds, >0: train the adapter in the top this many layers only (the rest stays)
    seed: int = 0
    kd: bool = False  # logit distillation from a local teacher with the student's tokenizer (GKD)
    kd_lambda: float = 0.0  # GKD's share of on-policy (student-generated) sequences; 0 is CPU-friendly
    kd_beta: float = 0.5  # generalised JSD interpolation between forward and reverse KL

    def to_json(self) -> dict:
        return asdict(self) | {"target_modules": list(self.target_modules)}

    @classmethod
    def from_json(cls, record: dict) -> TrainSettings:
        fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        if "target_modules" in fields:
            fields["target_modules"] = tuple(fields["target_modules"])
        return cls(**fields)


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final_loss: float | None
    train_tokens: int  # tokens the model read (context and targets)
    target_tokens: int  # tokens the loss fell on
    losses: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def load_dataset_records(path: Path):
    """The distilled dataset as a `datasets.Dataset` of conversations (TRL's format)."""
    from datasets import Dataset

    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    return Dataset.from_list([{"messages": r["messages"]} for r in records])


def train(base_path: Path, dataset_path: Path, out_dir: Path, settings: TrainSettings,
          on_progress: Callable[[dict], None] = lambda _: None, teacher_path: Path | None = None,
          should_stop: Callable[[], bool] = lambda: False, parent_adapter: Path | None = None) -> TrainResult:
    """Train a LoRA adapter on the dataset and save it (adapter only) to `out_dir`; with a
    parent adapter, that adapter trains on (its rank and modules; the settings' are unused)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    tokenizer.chat_template = TRAINING_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with MODEL_LOADS:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    dataset = load_dataset_records(dataset_path).shuffle(seed=settings.seed)
    model, lora = trainable_adapter(model, settings, parent_adapter)
    # the trainer's output folder (it saves nothing there) stays out of the version folder, run or crash
    scratch = tempfile.TemporaryDirectory(prefix="tutor-train-")
    common = trainer_arguments(settings, scratch.name)
    if settings.kd:
        trainer = _gkd_trainer(model, tokenizer, dataset, lora, common, settings, teacher_path)
    else:
        from trl import SFTConfig, SFTTrainer

        config = SFTConfig(**common, assistant_only_loss=True)
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora)
        freeze_lower_layers(trainer.model, settings.upper_layers)
    return run_trainer(trainer, out_dir, scratch, on_progress, should_stop)


def trainer_arguments(settings: TrainSettings, output_dir: str) -> dict:
    """The training arguments every trainer here shares: CPU, fp32, no checkpoints, a log line a step.
    No activation checkpointing (TRL's configs turn it on): it recomputes every layer's forward in
    the backward pass and sends the gradient down to the embeddings, whatever is frozen."""
    return dict(
        output_dir=output_dir, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False,
        num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation, learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=0.03, logging_steps=1, save_strategy="no",
        report_to=[], seed=settings.seed, dataloader_num_workers=0, max_length=settings.max_length,
    )


def trainable_adapter(model, settings: TrainSettings, parent: Path | None):
    """(model, peft config for the trainer): the parent version's adapter made trainable (its
    own rank and modules), or a fresh LoRA config on the settings for the trainer to add."""
    from peft import LoraConfig, PeftModel

    if parent is not None:
        return PeftModel.from_pretrained(model, str(parent), is_trainable=True), None
    return model, LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                             target_modules=list(settings.target_modules), task_type="CAUSAL_LM")


class Cancelled(Exception):
    """An admin cancelled the run: nothing is saved or registered."""


def run_trainer(trainer, out_dir: Path, scratch: tempfile.TemporaryDirectory,
                on_progress: Callable[[dict], None], should_stop: Callable[[], bool] = lambda: False) -> TrainResult:
    """Train with progress reports (the steps to take at the start; step, loss, ETA after every step), stop early when
    `should_stop` says so (raising Cancelled), save the adapter."""
    from transformers import TrainerCallback

    started = time.perf_counter()
    losses: list[float] = []

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            on_progress({"step": 0, "total_steps": state.max_steps})  # the bar's length, before the first step

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            losses.append(float(logs["loss"]))
            elapsed = time.perf_counter() - started
            step, total = state.global_step, state.max_steps
            on_progress({"step": step, "total_steps": total, "loss": float(logs["loss"]),
                         "eta_s": round(elapsed / step * (total - step)) if step else None})

        def on_step_end(self, args, state, control, **kwargs):
            if should_stop():
                control.should_training_stop = True

    trainer.add_callback(Progress())
    try:
        trainer.train()
    finally:
        scratch.cleanup()
    if should_stop():
        raise Cancelled(f"cancelled after step {trainer.state.global_step}")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_adapter(trainer.model, out_dir)
    train_tokens, target_tokens = _token_counts(trainer)
    return TrainResult(
        steps=trainer.state.global_step, seconds=round(time.perf_counter() - started, 1),
        final_loss=losses[-1] if losses else None, train_tokens=train_tokens,
        target_tokens=target_tokens, losses=losses,
    )


def save_adapter(model, out_dir: Path) -> None:
    """The LoRA weights only, in bfloat16 (as the student is served): half the bytes to ship."""
    import torch
    from safetensors.torch import load_file, save_file

    # only the trained adapter: DPO/KTO keep a frozen copy of the champion's ("ref") beside it
    trained = [name for name in getattr(model, "peft_config", {}) if name != "ref"]
    model.save_pretrained(str(out_dir), selected_adapters=trained or None)
    (out_dir / "README.md").unlink(missing_ok=True)  # peft's generic model card; the manifest says more
    weights = out_dir / "adapter_model.safetensors"
    tensors = {name: tensor.to(torch.bfloat16) for name, tensor in load_file(weights).items()}
    save_file(tensors, weights, metadata={"format": "pt"})
    # the base is named, not located: this machine's path means nothing on another
    config_file = out_dir / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = Path(str(config.get("base_model_name_or_path") or "")).name or None
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _token_counts(trainer) -> tuple[int, int]:
    dataset = trainer.train_dataset
    if dataset is None or "input_ids" not in dataset.column_names:
        return 0, 0
    total = sum(len(ids) for ids in dataset["input_ids"])
    if "labels" in dataset.column_names:
        return total, sum(sum(1 for label in labels if label != -100) for labels in dataset["labels"])
    return total, total


def _gkd_trainer(model, tokenizer, dataset, lora, common: dict, settings: TrainSettings, teacher_path: Path | None):
    """TRL's GKD trainer: the student matches the teacher's token distributions on the same
    conversations (generalised JSD), not just the teacher's sampled text."""
    if teacher_path is None:
        raise ValueError("--kd needs a local teacher model (a path or Hugging Face id)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    teacher_tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    if teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ValueError("--kd needs a teacher with the student's tokenizer (same vocabulary)")
    with MODEL_LOADS:
        teacher = AutoModelForCausalLM.from_pretrained(teacher_path, dtype=torch.float32)
    config = GKDConfig(**common, lmbda=settings.kd_lambda, beta=settings.kd_beta, max_new_tokens=48)
    return GKDTrainer(model=model, teacher_model=teacher, args=config, train_dataset=per_turn(dataset),
                      processing_class=tokenizer, peft_config=lora)


KD_CONTEXT_MESSAGES = 8  # recent messages before each tutor turn, as a live turn shows them


def per_turn(dataset):
    """GKD takes the loss on a conversation's last message: one example per taught tutor turn,
    with the system prompt and the recent dialogue before it."""
    from datasets import Dataset

    examples = []
    for record in dataset:
        messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        system, dialogue = messages[:1], messages[1:]
        for index, message in enumerate(record["messages"][1:]):
            if message["role"] == "assistant" and message.get("train") is not False:
                start = max(0, index - KD_CONTEXT_MESSAGES)
                examples.append({"messages": system + dialogue[start:index + 1]})
    return Dataset.from_list(examples)


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
