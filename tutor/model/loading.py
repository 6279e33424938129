"""Turn a model spec from the settings into a backend."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable

from tutor.errors import InvalidInput, ModelError
from tutor.model.backend import Backend
from tutor.model.registry import MANIFEST

log = logging.getLogger(__name__)

# transformers' from_pretrained swaps process-wide functions while it builds a model
# (PreTrainedModel.tie_weights, torch's init functions, the default device) and puts them back
# when it is done. Two loads in two threads put them back in the wrong order and leave
# tie_weights a no-op for the life of the process: every later model with tied embeddings keeps
# an lm_head on the meta device. Every model load in this process holds this lock.
MODEL_LOADS = threading.RLock()


def load_backend(
    spec: str,
    *,
    data_dir: Path,
    adapter: str | None = None,
    api_key: str | None = None,
    engine: str = "onnxruntime",
    progress: Callable[[str], None] = print,
) -> Backend:
    """`embedded`, `planner`, `fake` (`fake:0.2`: 0.2 s a word, to watch a reply stream), an
    http(s) endpoint (`URL#model`), or a Hugging Face id / local path, decoded by `engine`."""
    if spec == "planner":
        from tutor.model.planner import PlannerStudent

        return PlannerStudent()
    if spec == "fake" or spec.startswith("fake:"):
        from tutor.model.fake import FakeBackend

        try:
            return FakeBackend(seconds_per_word=float(spec.partition(":")[2] or 0))
        except ValueError:
            raise ModelError(f"'fake:SECONDS' takes a number of seconds per word, not {spec!r}") from None
    if spec.startswith(("http://", "https://")):
        from tutor.model.openai_compatible import OpenAICompatibleBackend

        url, _, model = spec.partition("#")
        return OpenAICompatibleBackend(url, model or "default", api_key=api_key)

    if spec == "embedded":
        from tutor.model.embedded import provision_embedded

        path = provision_embedded(data_dir, progress)
    else:
        path = spec
    if adapter:
        check_adapter_base(Path(str(path)), Path(str(adapter)))
    progress(f"Loading the student model {Path(str(path)).name}" + (f" with adapter {adapter}" if adapter else "") + "...")
    if engine == "onnxruntime":
        fast = onnx_backend(path, adapter, data_dir, progress)
        if fast is not None:
            return fast
    from tutor.model.transformers_backend import TransformersBackend

    return TransformersBackend(path, adapter)


def onnx_backend(path, adapter: str | None, data_dir: Path, progress: Callable[[str], None]) -> Backend | None:
    """The student on ONNX Runtime GenAI, or None (logged) where it cannot run: plain transformers serves."""
    try:
        from tutor.model.onnx_backend import OnnxBackend
    except ImportError as error:
        log.warning("The ONNX Runtime GenAI engine is missing (%s): serving with plain transformers, several "
                    "times slower. Install it with `pip install -r requirements.txt`.", error)
        return None
    try:
        return OnnxBackend(path, adapter, data_dir=data_dir, progress=progress)
    except ModelError as error:
        log.warning("The ONNX Runtime GenAI engine cannot serve %s (%s): serving with plain transformers.",
                    Path(str(path)).name, error)
        return None


def check_adapter_base(base_path: Path, adapter: Path) -> None:
    """A registered adapter names the base it was trained on: refuse any other."""
    manifest = adapter / MANIFEST
    if manifest.exists():
        base = json.loads(manifest.read_text(encoding="utf-8")).get("base")
        if base and base != Path(str(base_path)).name:
            raise InvalidInput(f"Adapter {adapter.name} was trained on {base}, not {Path(str(base_path)).name}.")
