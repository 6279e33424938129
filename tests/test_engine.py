"""The ONNX Runtime GenAI serving engine: the same greedy tokens as transformers, base and LoRA
versions, concurrent replies queued oldest first, versions switched while serving, a clear
fallback."""

import logging
import sys
import threading
import time

import pytest

from tutor.domain.prompting import ChatMessage
from tutor.model.backend import GenerationParams
from tutor.model.onnx_backend import EXACT, OnnxBackend, engine_dir
from tutor.model.loading import load_backend
from tutor.model.transformers_backend import TransformersBackend

MESSAGES = [ChatMessage("system", "You are a tutor."), ChatMessage("user", "Is it 15?")]
PROMPTS = [MESSAGES, [ChatMessage("user", "I think it is 350: I added the bids.")],
           [ChatMessage("system", "Problem: 3 apples and 5 pears."), ChatMessage("user", "8?"),
            ChatMessage("assistant", "[")]]
GREEDY = GenerationParams(max_new_tokens=16, temperature=0, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)  # random LoRA weights, the same whichever tests ran before
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"],
                                           init_lora_weights=False))
    folder = tmp_path_factory.mktemp("versions") / "v7"
    lora.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def submitted(engine: OnnxBackend, action) -> list:
    """The requests `action` submits to the engine's workers."""
    requests, submit = [], engine._submit
    engine._submit = lambda request: requests.append(request) or submit(request)
    try:
        action()
    finally:
        engine._submit = submit
    return requests


def greedy_tokens(backend, messages, params=GREEDY) -> list[int]:
    text = "".join(backend.generate(messages, params))
    return backend.tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("version", ["base", "lora"])
def test_the_engine_decodes_the_same_greedy_tokens_as_transformers(version, tiny_model_dir, lora_dir, data_dir):
    adapter = lora_dir if version == "lora" else None
    exact = TransformersBackend(tiny_model_dir, adapter, dtype="float32")
    fast = OnnxBackend(tiny_model_dir, adapter, data_dir=data_dir, quantization=EXACT)
    assert fast.version == exact.version
    for messages in PROMPTS:
        expected = exact.model.generate(**exact.prompt_ids(messages), **exact.generation_kwargs(GREEDY))
        prompt_length = exact.prompt_ids(messages)["input_ids"].shape[1]
        want = exact.tokenizer.decode(expected[0, prompt_length:], skip_special_tokens=True)
        assert "".join(fast.generate(messages, GREEDY)) == want
    # the adapter changes what is said: the merged engine really carries it
    if adapter is not None:
        plain = OnnxBackend(tiny_model_dir, data_dir=data_dir, quantization=EXACT)
        assert any("".join(plain.generate(m, GREEDY)) != "".join(fast.generate(m, GREEDY)) for m in PROMPTS)


def test_the_engine_scores_a_reply_as_transformers_does(tiny_model_dir, lora_dir, data_dir):
    """Teacher-forced log-probabilities (how a quantized engine is checked against the exact
    one): each reply token's, the end of the turn last, as transformers computes them."""
    import torch

    exact = TransformersBackend(tiny_model_dir, lora_dir, dtype="float32")
    fast = OnnxBackend(tiny_model_dir, lora_dir, data_dir=data_dir, quantization=EXACT)
    pairs = [(MESSAGES, "Yes, 15 is right."), (PROMPTS[1], "How did you add them?")]
    for (messages, reply), scored in zip(pairs, fast.score(pairs)):
        prompt = exact.prompt_ids(messages)["input_ids"][0].tolist()
        ids = prompt + exact.tokenizer(reply, add_special_tokens=False)["input_ids"] + [exact.tokenizer.eos_token_id]
        with torch.no_grad():
            logits = exact.model(torch.tensor([ids])).logits[0].float()
        want = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
        assert scored == pytest.approx(want[len(prompt) - 1:].tolist(), abs=1e-3)


def test_a_constrained_first_token_is_the_best_allowed_one_as_in_transformers(tiny_model_dir, lora_dir, data_dir):
    exact = TransformersBackend(tiny_model_dir, lora_dir, dtype="float32")
    fast = OnnxBackend(tiny_model_dir, lora_dir, data_dir=data_dir, quantization=EXACT)
    messages = PROMPTS[2]
    free = greedy_tokens(exact, messages)
    # choices whose first tokens exclude the free reply's opening: the engine must decode again
    vocabulary = ["focus", "probing", "telling", "generic", "hello", "seven", "apples", "pears"]
    choices = tuple(w for w in vocabulary if exact.first_tokens([w]).isdisjoint({free[0]}))[:4]
    params = GenerationParams(max_new_tokens=16, temperature=0, repetition_penalty=1.0, choices=choices)
    want = "".join(exact.generate(messages, params))
    got = "".join(fast.generate(messages, params))
    assert got == want
    openings = [exact.tokenizer.decode([token]) for token in exact.first_tokens(choices)]
    assert any(got.startswith(opening) for opening in openings)  # an allowed opening, not the free one
    # and where the free opening is allowed, nothing changes
    allowed = tuple(w for w in vocabulary if exact.first_tokens([w]) & {free[0]}) or ()
    if allowed:
        open_params = GenerationParams(max_new_tokens=16, temperature=0, repetition_penalty=1.0,
                                       choices=allowed + choices[:1])
        assert "".join(fast.generate(messages, open_params)) == "".join(exact.generate(messages, open_params))


def test_a_ruled_out_opening_is_banned_after_the_tag_alike_in_both_engines(tiny_model_dir, data_dir, monkeypatch):
    from dataclasses import replace

    from tutor.model import chat

    exact = TransformersBackend(tiny_model_dir, dtype="float32")
    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir, quantization=EXACT)
    tokenizer = fast.tokenizer
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert chat.opening_sequences(tokenizer, ("Yes", "You are correct")) == (tuple(ids("] Yes")), tuple(ids("] You are correct")))
    # the random model writes no move tag: rule out its own second token after its first
    params = replace(GREEDY, max_new_tokens=8)
    length = len(chat.prompt_ids(tokenizer, PROMPTS[2]))
    free = exact.model.generate(**exact.prompt_ids(PROMPTS[2]), **exact.generation_kwargs(params))[0, length:].tolist()
    monkeypatch.setattr(chat, "opening_sequences", lambda tokenizer, openings: (tuple(free[:2]),) if openings else ())
    ruled = replace(params, ruled_out=("its words",))
    want = greedy_tokens(exact, PROMPTS[2], ruled)
    assert want[:2] != free[:2] and want != greedy_tokens(exact, PROMPTS[2], params)
    assert greedy_tokens(fast, PROMPTS[2], ruled) == want
    [batched] = fast.generate_batch([PROMPTS[2]], params, ruled_out=[("its words",)])
    [plain] = exact.generate_batch([PROMPTS[2]], params, ruled_out=[("its words",)])
    assert batched.text == plain.text == tokenizer.decode(want)


def test_concurrent_replies_decode_side_by_side_and_match_one_by_one(tiny_model_dir, data_dir):
    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir)
    alone = ["".join(fast.generate(m, GREEDY)) for m in PROMPTS]
    together = [output.text for output in fast.generate_batch(PROMPTS * 3, GREEDY)]
    assert together == alone * 3
    streamed: dict[int, str] = {}

    def learner(index: int) -> None:
        streamed[index] = "".join(fast.generate(PROMPTS[index % 3], GREEDY))

    threads = [threading.Thread(target=learner, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [streamed[i] for i in range(8)] == [alone[i % 3] for i in range(8)]


def test_a_reader_that_stops_early_frees_the_engine_for_the_next(tiny_model_dir, data_dir):
    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir)
    params = GenerationParams(max_new_tokens=64, min_new_tokens=64, temperature=0)
    reply = fast.generate(MESSAGES, params)
    next(reply)
    reply.close()
    whole = fast.generate(MESSAGES, params)
    assert len("".join(whole)) > 0 and whole.truncated


def test_closing_a_reply_mid_decode_returns_once_its_decoding_has_stopped(tiny_model_dir, data_dir):
    """A draft that fails mid-way is closed; its decoding must not outlive it (a process that
    exits while the engine runs may abort: `tutor chat` did, after its last turn)."""
    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir)
    stepping = threading.Event()
    step = fast._step

    def tracked(decoding):
        stepping.set()
        try:
            return step(decoding)
        finally:
            stepping.clear()

    fast._step = tracked
    long = GenerationParams(max_new_tokens=4000, min_new_tokens=4000, temperature=0)
    replies = []
    request, = submitted(fast, lambda: replies.append(fast.generate(MESSAGES, long)))
    next(replies[0])
    assert not request.done.is_set()  # decoding
    replies[0].close()
    assert request.done.is_set() and not stepping.is_set() and request.tokens.qsize() < 4000


def test_a_reply_that_has_shown_its_first_words_yields_to_a_turn_that_has_not(tiny_model_dir, data_dir):
    """A burst of turns: a newer turn decodes its words before an older reply goes on."""
    from tutor.model.onnx_backend import FIRST_WORDS_TOKENS

    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir)
    long = GenerationParams(max_new_tokens=4000, min_new_tokens=4000, temperature=0)
    replies = []
    older, = submitted(fast, lambda: replies.append(fast.generate(MESSAGES, long, since=1.0)))
    while older.tokens.qsize() < FIRST_WORDS_TOKENS:
        time.sleep(0.001)  # the older reply has shown its first words
    newer = fast.generate(PROMPTS[1], GREEDY, since=2.0)
    assert "".join(newer) == "".join(fast.generate(PROMPTS[1], GREEDY))
    assert not older.done.is_set()  # still decoding: it let the newer turn go first
    replies[0].close()
    assert older.done.is_set()


def test_versions_build_once_and_switch_while_serving(tiny_model_dir, lora_dir, data_dir):
    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir, quantization=EXACT)
    folder = engine_dir(data_dir, tiny_model_dir, lora_dir, EXACT)
    promoted = fast.with_adapter(lora_dir)
    assert promoted.version == f"{tiny_model_dir.name}+v7" and folder.exists()
    built_at = folder.stat().st_mtime_ns
    again = fast.with_adapter(lora_dir)  # a rollback and a second promotion: no new build
    assert folder.stat().st_mtime_ns == built_at and again.quantization == EXACT
    assert "".join(again.generate(MESSAGES, GREEDY)) == "".join(promoted.generate(MESSAGES, GREEDY))
    assert fast.with_adapter(None).version == tiny_model_dir.name


def test_the_app_serves_through_the_engine_by_default_and_falls_back_with_a_log_line(
        tiny_model_dir, data_dir, monkeypatch, caplog):
    assert isinstance(load_backend(str(tiny_model_dir), data_dir=data_dir, progress=lambda _: None),
                      OnnxBackend)
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "tutor.model.onnx_backend")
    with caplog.at_level(logging.WARNING):
        backend = load_backend(str(tiny_model_dir), data_dir=data_dir, progress=lambda _: None)
    assert isinstance(backend, TransformersBackend)
    assert "ONNX Runtime GenAI engine is missing" in caplog.text and "plain transformers" in caplog.text


def test_a_model_the_engine_cannot_convert_falls_back(tmp_path, tiny_model_dir, caplog):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with caplog.at_level(logging.WARNING), pytest.raises(Exception):
        load_backend(str(broken), data_dir=tmp_path / "data", progress=lambda _: None)
    assert "cannot serve broken" in caplog.text
    assert not list((tmp_path / "data").rglob("*.built"))


def test_sampled_drafts_share_one_prompt_and_say_when_the_limit_cut_them(tiny_model_dir, data_dir):
    """Rejection sampling's drafts (`distill --resample`): n replies to one prompt in one call."""
    from tutor.model.backend import sample_outputs

    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir, quantization=EXACT)
    sampling = GenerationParams(max_new_tokens=6, temperature=1.0, top_p=1.0, seed=3)
    outputs = sample_outputs(fast, MESSAGES, sampling, 5)
    assert len(outputs) == 5 and len({o.text for o in outputs}) > 1  # drawn, not five copies
    assert all(o.truncated for o in outputs)  # a random tiny model does not end within 6 tokens
    # greedy "samples" are the one greedy reply
    greedy = sample_outputs(fast, MESSAGES, GREEDY, 2)
    assert [o.text for o in greedy] == ["".join(fast.generate(MESSAGES, GREEDY))] * 2


class _FakeGenerator:
    def __init__(self, capacity):
        self.capacity, self.held = capacity, None

    def rewind_to(self, length):
        self.held = length


def test_kept_prompt_states_are_reused_for_prompts_they_begin_and_bounded_by_their_bytes():
    from tutor.model.onnx_backend import STATE_TOKENS, _States

    made = []
    states = _States(lambda capacity: made.append(_FakeGenerator(capacity)) or made[-1], bytes_per_token=1,
                     limit=10_000, budget=3 * STATE_TOKENS)
    first = list(range(8))
    state, held = states.take(first, room=4)
    assert held == 0 and state.capacity == STATE_TOKENS  # room for the session's coming turns
    state.tokens = first + [100, 101]  # the prompt and its reply
    states.keep(state)
    again, held = states.take(first + [8, 9], room=4)  # the next turn: from the kept state, rewound
    assert again is state and held == 8 and state.generator.held == 8 and state.tokens == first
    assert states.reused == 8 and states.prefilled == 8 + 2
    again.tokens = first + [8, 9]
    states.keep(again)
    other, held = states.take([50] * 9, room=4)  # shares too little: a new state
    assert other is not state and held == 0
    # one token at least goes in, for the logits: a prompt the state holds whole is rewound by one
    states.keep(other.__class__(other.generator, [50] * 9, other.capacity))
    same, held = states.take([50] * 9, room=4)
    assert same.generator is other.generator and held == 8
    states.keep(same)
    big, held = states.take(first, room=STATE_TOKENS)  # the kept one has no room for it
    assert big is not state and held == 0
    big.tokens = first
    states.keep(big)  # over the budget: the least recently used goes
    assert state not in states._kept and len(states._kept) == 2
    assert states.take(first + [8, 9], room=4)[0] is big and len(made) == 3


def test_a_session_goes_on_in_the_state_of_its_first_turn_as_its_prompt_grows():
    """A state cannot grow: one made for a first turn's short prompt holds the turns after it
    too (each adds a reply and a message), so none of them prefills its whole prompt again."""
    from tutor.model.onnx_backend import _States

    made = []
    states = _States(lambda capacity: made.append(_FakeGenerator(capacity)) or made[-1], bytes_per_token=1,
                     limit=10_000)
    prompt = list(range(150))  # instructions, problem, the learner's first message
    state, _ = states.take(prompt, room=96)
    for turn in range(4):
        state.tokens = prompt + [1000 + turn] * 20  # and its reply
        states.keep(state)
        prompt = state.tokens + list(range(2000 + 100 * turn, 2100 + 100 * turn))  # the learner's next message
        state, held = states.take(prompt, room=96)
        assert held == len(prompt) - 100
    assert len(made) == 1 and len(prompt) == 630


def test_a_turn_decodes_from_its_kept_prompt_state_as_from_the_whole_prompt(tiny_model_dir, lora_dir, data_dir):
    """The next turn starts from the state prefilled ahead (while the learner wrote) and a
    constrained re-decode from the turn's own: the same greedy tokens as transformers."""
    from tutor.model import chat

    exact = TransformersBackend(tiny_model_dir, lora_dir, dtype="float32")
    fast = OnnxBackend(tiny_model_dir, lora_dir, data_dir=data_dir, quantization=EXACT)
    start = [ChatMessage("system", "Problem: 3 apples and 5 pears."), ChatMessage("user", "8?\nNote: right."),
             ChatMessage("assistant", "[focus] How did you get 8?")]
    turn = start + [ChatMessage("user", "I added them.\nNote: explained."), ChatMessage("assistant", "[")]
    whole = chat.prompt_ids(fast.tokenizer, start, complete=True)
    assert chat.prompt_ids(fast.tokenizer, turn)[:len(whole)] == whole  # what makes the state reusable
    prefill, = submitted(fast, lambda: fast.prepare(start))
    assert prefill.done.wait(10)
    free = greedy_tokens(exact, turn)
    vocabulary = ["focus", "probing", "telling", "generic", "hello", "seven", "apples", "pears"]
    choices = tuple(w for w in vocabulary if exact.first_tokens([w]).isdisjoint({free[0]}))[:4]
    for params in (GREEDY, GenerationParams(max_new_tokens=16, temperature=0, repetition_penalty=1.0, choices=choices)):
        reused = fast.states.reused
        assert "".join(fast.generate(turn, params)) == "".join(exact.generate(turn, params))
        assert fast.states.reused - reused >= len(whole) - 1  # started from the kept state
    assert fast.states.ahead == len(whole)
    # sampling follows every logit: a fresh engine, which prefills the whole prompt, draws the same
    sampled = GenerationParams(max_new_tokens=24, temperature=1.0, top_p=1.0, repetition_penalty=1.0, seed=5)
    fresh = OnnxBackend(tiny_model_dir, lora_dir, data_dir=data_dir, quantization=EXACT)
    assert "".join(fast.generate(turn, sampled)) == "".join(fresh.generate(turn, sampled))


def test_a_spare_reply_is_queued_only_beside_the_callers_own_turn_and_an_unread_reply_stops_when_closed(
        tiny_model_dir, data_dir):
    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir)
    long = GenerationParams(max_new_tokens=4000, min_new_tokens=4000, temperature=0)
    busy: list = []
    requests = submitted(fast, lambda: busy.extend(fast.generate(MESSAGES, long) for _ in range(2)))
    assert fast.generate_if_idle(MESSAGES, GREEDY) is None  # another learner's turn waits
    for reply in busy:
        reply.close()  # never read: closing stops its decoding all the same
    for request in requests:
        assert request.done.wait(5) and request.tokens.qsize() < 4000
    assert fast._turns == 0
    own = fast.generate(MESSAGES, long)  # the caller's own try decodes: its spare queues behind it
    spare = fast.generate_if_idle(MESSAGES, GREEDY)
    assert spare is not None
    own.close()
    assert "".join(spare) == "".join(fast.generate(MESSAGES, GREEDY))


def test_waiting_turns_are_taken_oldest_first_and_prefills_ahead_only_when_none_waits():
    from tutor.model.onnx_backend import _Queue, _Request

    pending = _Queue()
    first_try = _Request([1], GenerationParams(), since=1.0)
    newer_turn = _Request([2], GenerationParams(), since=2.0)
    ahead = _Request([3], GenerationParams(), ahead=True)
    retry = _Request([1, 9], GenerationParams(), since=1.0)  # the first turn's next try, asked for last
    for request in (newer_turn, ahead, first_try, retry):
        pending.put(request)
    assert [pending.get(timeout=1) for _ in range(4)] == [first_try, retry, newer_turn, ahead]
    assert pending.get(timeout=0.01) is None


def test_streamed_token_ids_become_text_pieces_without_split_characters(tiny_model_dir):
    from transformers import AutoTokenizer

    from tutor.model import chat

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "Nice 😀 work, café"
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids: list[int] = []
    pieces = list(chat.text_pieces(tokenizer, iter(tokens), ids))
    assert "".join(pieces) == tokenizer.decode(tokens) and ids == tokens
    assert not any("\ufffd" in piece for piece in pieces)
    # a reply cut inside a character still shows what it decoded
    cut = next(n for n in range(1, len(tokens)) if tokenizer.decode(tokens[:n]).endswith("\ufffd"))
    assert "".join(chat.text_pieces(tokenizer, iter(tokens[:cut]), [])) == tokenizer.decode(tokens[:cut])


@pytest.mark.parametrize("spread", [8.0, 1.0, 0.01])  # peaked (a trained model's), broad, flat
def test_top_p_sampling_draws_as_from_the_whole_sorted_vocabulary(spread):
    import numpy

    from tutor.model.onnx_backend import _pick

    logits = (numpy.random.default_rng(0).standard_normal(5000) * spread).astype(numpy.float32)
    params = GenerationParams(temperature=0.7, top_p=0.9)
    probabilities = numpy.exp((logits - logits.max()) / 0.7)
    probabilities /= probabilities.sum()
    order = numpy.argsort(-probabilities, kind="stable")
    top = order[:int(numpy.searchsorted(numpy.cumsum(probabilities[order]), 0.9)) + 1]
    want = [int(numpy.random.default_rng(seed).choice(top, p=probabilities[top] / probabilities[top].sum()))
            for seed in range(50)]
    assert [_pick(logits.copy(), params, numpy.random.default_rng(seed)) for seed in range(50)] == want


def test_a_spare_try_starts_from_its_turns_state_once_the_current_try_ends(tiny_model_dir, data_dir):
    """A turn's spare draft never begins beside its running try (the try holds the prompt's
    state, so the spare would prefill the whole prompt again, in the turn's wait)."""
    from tutor.model.onnx_backend import FIRST_WORDS_TOKENS

    fast = OnnxBackend(tiny_model_dir, data_dir=data_dir)
    long = GenerationParams(max_new_tokens=200, min_new_tokens=200, temperature=0)
    first = fast.generate(PROMPTS[1], long, since=5.0)
    for _ in range(FIRST_WORDS_TOKENS + 2):
        next(first)
    before = fast.states.prefilled
    spare = fast.generate_if_idle(PROMPTS[1], GREEDY, since=5.0)
    "".join(first)  # the first try decodes to its end, then the spare begins
    assert "".join(spare) == "".join(fast.generate(PROMPTS[1], GREEDY))
    assert fast.states.prefilled - before <= 2  # the spare read the prompt from the kept state
