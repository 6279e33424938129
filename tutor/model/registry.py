"""The model registry: each trained version is a folder `models/<version>/` (LoRA adapter and
`manifest.json`: base model, parent, data hash, training configuration, evaluation figures),
recorded in the store with its aliases. `champion` is what the app serves; `candidate` is a new
version waiting for the evaluation gate.

A fresh clone has no database yet: `models/aliases.json` holds the aliases it ships with, and
the store's aliases (set by training runs and admins) take precedence over it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable

from tutor.config import MODELS_DIR
from tutor.domain.prompting import INSTRUCT
from tutor.errors import InvalidInput
from tutor.storage.store import Store, now

MANIFEST = "manifest.json"
ALIASES_FILE = "aliases.json"
ALIASES = ("champion", "candidate")
BASE = "base"  # the base model, no adapter
_VERSION = re.compile(r"^v(\d+)$")


class Registry:
    def __init__(self, root: Path = MODELS_DIR, store: Store | None = None):
        self.root, self.store = Path(root), store

    def versions(self) -> list[str]:
        """Versions with a manifest under the root, oldest first."""
        found = [p.name for p in self.root.iterdir() if (p / MANIFEST).exists()] if self.root.exists() else []
        return sorted(found, key=lambda name: (int(m.group(1)) if (m := _VERSION.match(name)) else 10**9, name))

    def manifest(self, version: str) -> dict:
        path = self.root / version / MANIFEST
        if not path.exists():
            raise InvalidInput(f"No model version {version!r} in {self.root} (try 'base').")
        return json.loads(path.read_text(encoding="utf-8"))

    def shipped_aliases(self) -> dict[str, str]:
        path = self.root / ALIASES_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def alias(self, alias: str) -> str | None:
        stored = self.store.alias(alias) if self.store else None
        return stored or self.shipped_aliases().get(alias)

    def resolve(self, name: str, progress: Callable[[str], None] = print) -> Path | None:
        """The adapter folder for a version or alias; None means the base model.

        `champion` with nothing registered yet means the base model (said so on `progress`).
        """
        if name == BASE:
            return None
        version = self.alias(name) if name in ALIASES else name
        if version is None:
            if name == "champion":
                progress(f"No champion registered in {self.root} yet: using the base model.")
                return None
            raise InvalidInput(f"No {name} version registered (try 'champion' or 'base').")
        self.manifest(version)  # a clear error for a version that is not there
        return self.root / version

    def prompt_format(self, name: str) -> str:
        """How a version (or alias) is asked: the base model and untrained students take chat."""
        adapter = self.resolve(name, progress=lambda _: None)
        return self.manifest(adapter.name).get("prompt_format", INSTRUCT) if adapter else INSTRUCT

    def next_version(self) -> str:
        """The next free vN: folders without a manifest (a run under way, a crash) count too."""
        folders = [p.name for p in self.root.iterdir() if p.is_dir()] if self.root.exists() else []
        numbers = [int(m.group(1)) for name in folders if (m := _VERSION.match(name))]
        return f"v{max(numbers, default=0) + 1}"

    def register(self, version: str, manifest: dict, alias: str | None = "candidate") -> dict:
        """Record a version whose adapter is already in `root/version`: write its manifest,
        add it to the store, and point `alias` at it."""
        folder = self.root / version
        if not (folder / "adapter_config.json").exists():
            raise InvalidInput(f"{folder} holds no adapter.")
        manifest = {"version": version, "created": now()} | manifest
        self._write_manifest(version, manifest)
        if alias:
            self.set_alias(alias, version)
        return manifest

    def set_alias(self, alias: str, version: str, actor: str = "console", reason: str = "promote") -> None:
        if alias not in ALIASES:
            raise InvalidInput(f"Unknown alias {alias!r}: {' or '.join(ALIASES)}.")
        manifest = self.manifest(version)
        if self.store is None:
            raise InvalidInput("Setting an alias needs the data directory's database.")
        previous = self.alias(alias)  # the shipped champion counts: a rollback can return to it
        if previous and not self.store.alias(alias):
            self.store.register_model(previous, self.manifest(previous), str(self.root / previous))
            self.store.set_alias(alias, previous, "shipped", "shipped")
        self.store.register_model(version, manifest, str(self.root / version))
        self.store.set_alias(alias, version, actor, reason)

    def record_evaluation(self, version: str, figures: dict, key: str = "evaluation") -> None:
        """Keep a version's evaluation figures in its manifest (and the store's copy of it);
        `gate_evaluation` holds the gate's, measured on its smaller slice."""
        manifest = self.manifest(version)
        manifest[key] = figures
        self._write_manifest(version, manifest)

    def sync(self) -> None:
        """Make the store know every version on disk (shipped ones included)."""
        if self.store is None:
            return
        for version in self.versions():
            self.store.register_model(version, self.manifest(version), str(self.root / version))

    def _write_manifest(self, version: str, manifest: dict) -> None:
        path = self.root / version / MANIFEST
        partial = path.with_suffix(".json.partial")  # a crash mid-write leaves the old manifest whole
        partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, path)
        if self.store is not None:
            self.store.register_model(version, manifest, str(self.root / version))
