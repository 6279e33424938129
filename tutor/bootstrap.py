"""Assemble the service from settings: data directory, store, problem bank, student model."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

from tutor.config import DIALOGUES_FILE, EMBEDDED, MODELS_DIR, PROBLEMS_FILE, Settings
from tutor.domain.dialogues import read_dialogues
from tutor.domain.problems import ProblemBank
from tutor.domain.repeats import WORDS, RepeatRule
from tutor.model.loading import load_backend
from tutor.model.registry import Registry
from tutor.model.retrieval import MiniLMEmbedder, Retrieval
from tutor.model.similarity import meaning_repeats
from tutor.service import TutorService
from tutor.storage.store import Store

if TYPE_CHECKING:
    from tutor.rounds import Rounds


def open_store(settings: Settings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(settings.database_path)


def open_service(settings: Settings, progress: Callable[[str], None] = print) -> TutorService:
    store = open_store(settings)
    adapter = settings.adapter
    if adapter is None and settings.student_model == EMBEDDED:
        adapter = Registry(MODELS_DIR, store).resolve(settings.model, progress)
    student = load_backend(
        settings.student_model,
        data_dir=settings.data_dir,
        adapter=adapter,
        api_key=settings.api_key,
        engine=settings.engine,
        progress=progress,
    )
    teacher = None
    if settings.teacher:
        teacher = load_backend(settings.teacher, data_dir=settings.data_dir,
                               api_key=settings.api_key, progress=progress)
    bank = ProblemBank.load(PROBLEMS_FILE)
    retrieval = None if settings.student_model.startswith("fake") else open_retrieval(settings, bank, progress)
    return TutorService(store, bank, student, policy=settings.reveal_policy, retrieval=retrieval,
                        teacher=teacher, draft_tries=settings.draft_tries, repeats=open_repeats(retrieval),
                        judge=open_judge(settings, progress), draft_candidates=settings.draft_candidates)


def open_judge(settings: Settings, progress: Callable[[str], None] = print):
    """The judge (loaded now, in the background, so the first ranked turn does not wait for it);
    None if asked for none or none is there (a fake student, in tests, gets one only when named)."""
    from tutor.errors import InvalidInput
    from tutor.judge.registry import load_judge

    if settings.judge == "none" or (settings.student_model.startswith("fake") and settings.judge == "champion"):
        return None
    try:
        judge = load_judge(settings.judge)
    except InvalidInput as error:
        progress(f"{error} Drafts are not ranked.")
        return None
    threading.Thread(target=judge.warm, daemon=True).start()
    return judge


def open_repeats(retrieval: Retrieval | None) -> RepeatRule:
    """Questions compared by meaning with the retrieval's sentence model (loaded now, in the
    background, so the first turn does not wait for it); by their words without one."""
    if retrieval is None:
        return WORDS
    threading.Thread(target=retrieval.embedder, args=(["warm up"],), daemon=True).start()
    return meaning_repeats(retrieval.embedder)


def open_rounds(settings: Settings, service: TutorService, accounts) -> Rounds | None:
    """RLHF rounds for a deployment that serves the embedded student's champion (the versions
    in models/ are trained on it); none otherwise."""
    from tutor.rounds import Rounds
    from tutor.training.runs import round_config

    if settings.student_model != EMBEDDED or settings.adapter or settings.model != "champion":
        return None  # a remote, scripted or other local student, or a pinned version: not ours to change
    return Rounds(service, accounts, Registry(MODELS_DIR, service.store), settings.data_dir,
                  round_config(base=settings.student_model))


def open_retrieval(settings: Settings, bank: ProblemBank, progress: Callable[[str], None] = print) -> Retrieval:
    """Exemplar and problem indexes over `dialogues/`, cached in the data directory."""
    return Retrieval(MiniLMEmbedder(), list(read_dialogues(DIALOGUES_FILE)), list(bank),
                     settings.data_dir / "cache", progress)
