from dataclasses import replace
import json

import httpx
import pytest

from tutor.domain.prompting import ChatMessage
from tutor.errors import ModelError
from tutor.model.backend import GenerationParams, Output
from tutor.model.openai_compatible import OpenAICompatibleBackend
from tutor.model.transformers_backend import TransformersBackend

MESSAGES = [ChatMessage("system", "You are a tutor."), ChatMessage("user", "Is it 15?")]
GREEDY = GenerationParams(max_new_tokens=12, temperature=0)


def test_transformers_backend_streams_a_tiny_random_llama(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, dtype="float32")
    pieces = list(backend.generate(MESSAGES, GREEDY))
    assert pieces, "expected at least one streamed piece"
    text = "".join(pieces)
    prompt_length = backend.prompt_ids(MESSAGES)["input_ids"].shape[1]
    # Streaming must yield exactly what a plain generate() decodes, piece by piece.
    full = backend.model.generate(**backend.prompt_ids(MESSAGES), **backend.generation_kwargs(GREEDY))
    expected = backend.tokenizer.decode(full[0, prompt_length:], skip_special_tokens=True)
    assert text == expected
    assert backend.version == tiny_model_dir.name


def test_transformers_backend_is_reproducible_with_a_seed(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, dtype="float32")
    params = GenerationParams(max_new_tokens=12, temperature=1.0, seed=7)
    assert "".join(backend.generate(MESSAGES, params)) == "".join(backend.generate(MESSAGES, params))


def test_transformers_backend_applies_a_peft_adapter(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    adapter_dir = tmp_path / "v-test"
    lora.save_pretrained(adapter_dir)

    plain = TransformersBackend(tiny_model_dir, dtype="float32")
    adapted = TransformersBackend(tiny_model_dir, adapter_dir, dtype="float32")
    assert adapted.version == f"{tiny_model_dir.name}+v-test"
    inputs = plain.prompt_ids(MESSAGES)
    assert not (plain.model(**inputs).logits == adapted.model(**inputs).logits).all()


def test_transformers_backend_reports_a_missing_model(tmp_path):
    with pytest.raises(ModelError):
        TransformersBackend(tmp_path / "nothing-here")


def _sse(*pieces: str) -> bytes:
    events = [
        "data: " + json.dumps({"choices": [{"delta": {"content": piece}}]}) for piece in pieces
    ]
    return ("\n\n".join(events + ["data: [DONE]"]) + "\n\n").encode()


def test_openai_compatible_backend_streams_deltas_and_sends_params():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, content=_sse("What ", "is 3 ", "+ 5?"),
                              headers={"content-type": "text/event-stream"})

    backend = OpenAICompatibleBackend("http://tutor.test/v1/", "smol", api_key="k",
                                      transport=httpx.MockTransport(handler))
    assert list(backend.generate(MESSAGES, GREEDY)) == ["What ", "is 3 ", "+ 5?"]
    assert seen["url"] == "http://tutor.test/v1/chat/completions"
    assert seen["auth"] == "Bearer k"
    assert seen["body"]["stream"] is True
    assert seen["body"]["max_tokens"] == 12
    assert seen["body"]["messages"][1] == {"role": "user", "content": "Is it 15?"}
    assert backend.version == "openai:smol"


def test_openai_compatible_backend_turns_http_errors_into_model_errors():
    backend = OpenAICompatibleBackend(
        "http://tutor.test/v1", transport=httpx.MockTransport(lambda r: httpx.Response(503, text="busy"))
    )
    with pytest.raises(ModelError, match="503"):
        list(backend.generate(MESSAGES, GREEDY))


def test_batched_generation_matches_one_by_one(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, dtype="float32")
    prompts = [MESSAGES, [ChatMessage("user", "What is 3 + 5? Think about the apples first.")]]
    replies = [backend.generate(p, GREEDY) for p in prompts]
    one_by_one = [Output("".join(reply), reply.truncated) for reply in replies]
    assert backend.generate_batch(prompts, GREEDY) == one_by_one


def test_a_reply_knows_whether_the_token_limit_cut_it(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, dtype="float32")
    short = backend.generate(MESSAGES, replace(GREEDY, max_new_tokens=3))
    assert len("".join(short)) > 0 and short.truncated  # a random tiny model never stops in 3 tokens
    [batched] = backend.generate_batch([MESSAGES], replace(GREEDY, max_new_tokens=3))
    assert batched.truncated


def test_an_endpoint_reply_stopped_at_the_token_limit_is_truncated():
    events = ('data: {"choices": [{"delta": {"content": "Yes, I think we need"}}]}\n\n'
              'data: {"choices": [{"delta": {"content": " to take"}, "finish_reason": "length"}]}\n\n'
              "data: [DONE]\n\n")
    backend = OpenAICompatibleBackend(
        "http://tutor.test/v1", transport=httpx.MockTransport(lambda r: httpx.Response(200, text=events)))
    reply = backend.generate(MESSAGES, GREEDY)
    assert "".join(reply) == "Yes, I think we need to take" and reply.truncated


def test_a_trained_students_reply_continues_its_forced_start_and_opens_with_an_allowed_move(tiny_model_dir):
    backend = TransformersBackend(tiny_model_dir, dtype="float32")
    messages = MESSAGES + [ChatMessage("assistant", "[")]
    assert backend.prompt_text(messages).endswith("<|im_start|>assistant\n[")  # continued, not closed
    choices = ("focus", "probing")
    allowed = backend.first_tokens(choices)
    inputs = backend.prompt_ids(messages)
    length = inputs["input_ids"].shape[1]
    for params in (GenerationParams(max_new_tokens=3, temperature=0, choices=choices),
                   GenerationParams(max_new_tokens=3, temperature=1.0, seed=3, choices=choices)):
        free = backend._generate_tokens(inputs, params, [()])
        constrained = backend._generate_tokens(inputs, params, [choices])
        assert constrained[0, length].item() in allowed
        streamed = "".join(backend.generate(messages, params))
        assert streamed == backend.tokenizer.decode(constrained[0, length:], skip_special_tokens=True)
    assert free[0, length].item() not in allowed  # the random model alone would not open with a move


def test_the_move_is_chosen_on_the_models_own_scores_not_the_repetition_penalty(tiny_model_dir):
    import torch

    backend = TransformersBackend(tiny_model_dir, dtype="float32")
    messages = MESSAGES + [ChatMessage("assistant", "[")]
    inputs = backend.prompt_ids(messages)
    length = inputs["input_ids"].shape[1]
    with torch.inference_mode():
        logits = backend.model(**inputs).logits[0, -1]
    choices = ("focus", "probing", "telling", "generic")
    best = max(backend.first_tokens(choices), key=lambda i: logits[i].item())
    # a heavy penalty would otherwise steer away from any move token already in the prompt
    params = GenerationParams(max_new_tokens=2, temperature=0, repetition_penalty=50.0, choices=choices)
    assert backend._generate_tokens(inputs, params, [choices])[0, length].item() == best


def test_a_backend_without_shared_sampling_drafts_samples_one_by_one_with_their_own_seeds():
    from tutor.model.backend import GenerationParams, sample_outputs
    from tutor.model.fake import FakeBackend

    backend = FakeBackend(["What is 3 times 50?", "How did you get 350?", "Which bids were added?"])
    params = GenerationParams(max_new_tokens=4, temperature=0.8, seed=5, choices=("focus",))
    outputs = sample_outputs(backend, [ChatMessage("user", "350?")], params, 2)
    assert [(o.text, o.truncated) for o in outputs] == [("What is 3 times", True), ("How did you get", True)]
    assert [(p.seed, p.choices) for p in backend.params] == [(5, ()), (6, ())]
