"""Turn a model spec from the settings into a backend."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

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
