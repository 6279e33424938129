"""Assemble the service from settings: data directory, store, problem bank, student model."""

from __future__ import annotations

from typing import Callable

from tutor.config import PROBLEMS_FILE, Settings
from tutor.domain.problems import ProblemBank
from tutor.model.loading import load_backend
from tutor.service import TutorService
from tutor.storage.store import Store


def open_store(settings: Settings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(settings.database_path)


def open_service(settings: Settings, progress: Callable[[str], None] = print) -> TutorService:
    store = open_store(settings)
    student = load_backend(
        settings.student_model,
        data_dir=settings.data_dir,
        adapter=settings.adapter,
        api_key=settings.api_key,
        progress=progress,
    )
    return TutorService(store, ProblemBank.load(PROBLEMS_FILE), student)
