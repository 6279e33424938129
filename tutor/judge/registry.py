"""Judge versions: `models/judges/<jN>/` (LoRA, heads, manifest: base, data hash and counts,
training settings, validation figures), and `models/judges/aliases.json` naming the one the
product uses. A fresh clone scores turns with the shipped judge without training anything."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tutor.config import MODELS_DIR
from tutor.errors import InvalidInput
from tutor.storage.store import now

JUDGES_DIR = MODELS_DIR / "judges"
ALIASES_FILE = "aliases.json"
MANIFEST = "manifest.json"
_VERSION = re.compile(r"^j(\d+)$")


class JudgeRegistry:
    def __init__(self, root: Path = JUDGES_DIR):
        self.root = Path(root)

    def versions(self) -> list[str]:
        found = [p.name for p in self.root.iterdir() if (p / MANIFEST).exists()] if self.root.exists() else []
        return sorted(found, key=lambda name: int(m.group(1)) if (m := _VERSION.match(name)) else 10**9)

    def next_version(self) -> str:
        folders = [p.name for p in self.root.iterdir() if p.is_dir()] if self.root.exists() else []
        return f"j{max((int(m.group(1)) for n in folders if (m := _VERSION.match(n))), default=0) + 1}"

    def champion(self) -> str | None:
        path = self.root / ALIASES_FILE
        return json.loads(path.read_text(encoding="utf-8")).get("champion") if path.exists() else None

    def resolve(self, name: str = "champion") -> Path:
        version = self.champion() if name == "champion" else name
        if version is None or not (self.root / version / MANIFEST).exists():
            raise InvalidInput(f"No judge {name!r} in {self.root}: train one with `python -m tutor judge train`.")
        return self.root / version

    def manifest(self, version: str) -> dict:
        return json.loads((self.resolve(version) / MANIFEST).read_text(encoding="utf-8"))

    def register(self, version: str, manifest: dict, promote: bool = False) -> None:
        folder = self.root / version
        manifest = {"version": version, "created": now()} | manifest
        self._write(folder / MANIFEST, manifest)
        if promote:
            self._write(self.root / ALIASES_FILE, {"champion": version})

    def record(self, version: str, key: str, figures: dict) -> None:
        folder = self.resolve(version)
        self._write(folder / MANIFEST, json.loads((folder / MANIFEST).read_text(encoding="utf-8")) | {key: figures})

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, path)


def load_judge(name: str = "champion", root: Path = JUDGES_DIR):
    """The judge the product uses (or a named version, or a judge's folder), loaded on its
    first score."""
    from tutor.judge.model import Judge

    folder = Path(name)
    return Judge(folder if (folder / MANIFEST).exists() else JudgeRegistry(root).resolve(name))
