import hashlib

import numpy as np
import pytest

from tutor.config import DIALOGUES_FILE
from tutor.domain.dialogues import read_dialogues
from tutor.model.fake import FakeBackend
from tutor.model.retrieval import MiniLMEmbedder, Retrieval
from tutor.service import TutorService


class BagOfWords:
    """A deterministic stand-in embedder: hashed word counts, unit length."""

    name = "bag-of-words"

    def __init__(self):
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        vectors = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


@pytest.fixture(scope="module")
def dialogues():
    return list(read_dialogues(DIALOGUES_FILE))


def test_exemplars_have_the_planned_move(dialogues, bank):
    retrieval = Retrieval(BagOfWords(), dialogues, list(bank), progress=lambda _: None)
    found = retrieval.exemplars_for("probing", "How did you get that number? explain", k=3)
    probing_turns = {t.text for d in dialogues for t in d.turns if t.move == "probing"}
    assert len(found) == 3 and set(found) <= probing_turns


def test_the_index_is_cached_in_the_data_directory(dialogues, bank, tmp_path):
    first = BagOfWords()
    Retrieval(first, dialogues, list(bank), tmp_path, progress=lambda _: None)
    assert first.calls == 2 and len(list(tmp_path.glob("*.npy"))) == 2
    again = BagOfWords()
    Retrieval(again, dialogues, list(bank), tmp_path, progress=lambda _: None)
    assert again.calls == 0


def test_similar_problems_rank_the_same_story_first(bank, dialogues):
    retrieval = Retrieval(BagOfWords(), dialogues[:5], list(bank), progress=lambda _: None)
    carmen = bank.get("6000044")
    (nearest,) = retrieval.similar_problems(carmen.question, k=1)
    assert nearest.id == "6000044"
    assert all(p.id != "6000044" for p in retrieval.similar_problems(carmen.question, 3, "6000044"))


def test_the_service_gives_the_model_exemplars_for_the_move(store, bank, dialogues):
    backend = FakeBackend()
    retrieval = Retrieval(BagOfWords(), dialogues, list(bank), progress=lambda _: None)
    service = TutorService(store, bank, backend, retrieval=retrieval)
    conversation = service.start_bank_session(service.local_learner(), "6000044")
    *_, last = service.reply(conversation, "I think it is 350")
    exemplars = last.message.planner_state["exemplars"]
    assert len(exemplars) == 2
    assert all(line in backend.calls[-1][0].content for line in exemplars)


@pytest.mark.embedded
def test_minilm_embeds_offline_and_finds_paraphrases():
    embed = MiniLMEmbedder()
    assert not embed.loaded  # loaded on first use
    vectors = embed(["How much money does she have left?", "What amount of cash remains with her?",
                     "The train leaves the station at noon."])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] and embed.loaded


def test_the_minilm_model_loads_on_first_use_not_when_its_indexes_come_from_the_cache(bank, dialogues, tmp_path):
    class SameName(BagOfWords):  # writes the cache under MiniLM's name
        name = MiniLMEmbedder.name

    Retrieval(SameName(), dialogues, list(bank), tmp_path, progress=lambda _: None)
    embedder = MiniLMEmbedder()
    retrieval = Retrieval(embedder, dialogues, list(bank), tmp_path, progress=lambda _: None)
    assert not embedder.loaded  # a start with a warm cache does not load the model
    assert len(retrieval.problems.items) == len(list(bank))


def test_models_loaded_in_many_threads_leave_transformers_as_they_found_it(tiny_model_dir):
    """from_pretrained swaps process-wide functions while it loads; loads side by side used to
    put them back in the wrong order and leave weight tying off for good (a later model's
    lm_head stayed on the meta device: "Cannot copy out of meta tensor")."""
    import threading

    import torch
    from transformers import AutoModelForCausalLM, PreTrainedModel

    tie_weights = PreTrainedModel.tie_weights
    errors = []

    def load_sentence_models():
        try:
            for _ in range(3):
                MiniLMEmbedder()(["warm up"])
        except Exception as error:  # reported by the assertion below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=load_sentence_models) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert PreTrainedModel.tie_weights is tie_weights
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert all(parameter.device == torch.device("cpu") for parameter in model.parameters())
