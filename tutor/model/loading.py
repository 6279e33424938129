"""Turn a model spec from the settings into a backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from tutor.config import MODELS_DIR
from tutor.errors import InvalidInput
from tutor.model.backend import Backend


def load_backend(
    spec: str,
    *,
    data_dir: Path,
    adapter: str | None = None,
    api_key: str | None = None,
    progress: Callable[[str], None] = print,
) -> Backend:
    """`embedded`, `fake`, an http(s) endpoint (`URL#model`), or a Hugging Face id / local path."""
    if spec == "fake":
        from tutor.model.fake import FakeBackend

        return FakeBackend()
    if spec.startswith(("http://", "https://")):
        from tutor.model.openai_compatible import OpenAICompatibleBackend

        url, _, model = spec.partition("#")
        return OpenAICompatibleBackend(url, model or "default", api_key=api_key)

    from tutor.model.transformers_backend import TransformersBackend

    if spec == "embedded":
        from tutor.model.embedded import provision_embedded

        path = provision_embedded(data_dir, progress)
    else:
        path = spec
    progress(f"Loading the student model {Path(str(path)).name}" + (f" with adapter {adapter}" if adapter else "") + "...")
    return TransformersBackend(path, adapter)


def resolve_adapter(version: str, progress: Callable[[str], None] = print) -> Path | None:
    """The adapter directory for a version or alias in `models/`; None for the base model.

    `champion` with nothing registered yet means the base model (said so on `progress`).
    """
    if version == "base":
        return None
    aliases_file = MODELS_DIR / "aliases.json"
    aliases = json.loads(aliases_file.read_text()) if aliases_file.exists() else {}
    name = aliases.get(version, version)
    path = MODELS_DIR / name
    if (path / "adapter_config.json").exists():
        return path
    if version == "champion":
        progress("No champion registered in models/ yet: using the base model.")
        return None
    raise InvalidInput(f"No model version {version!r} in {MODELS_DIR} (try 'base').")
