"""A local Hugging Face causal LM (optionally with a peft LoRA adapter), streamed token by token."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

from tutor.domain.prompting import ChatMessage
from tutor.errors import ModelError
from tutor.model import chat
from tutor.model.backend import GenerationParams, Output, Reply
from tutor.model.loading import MODEL_LOADS


class TransformersBackend:
    def __init__(
        self,
        model_path: str | Path,
        adapter_path: str | Path | None = None,
        *,
        version: str | None = None,
        dtype: str = "bfloat16",
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_path)
            with MODEL_LOADS:
                model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as error:
            raise ModelError(f"Could not load the model {model_path}: {error}") from error
        self.engine = f"transformers {dtype}"
        self._loaded = _Loaded(model.eval())  # shared by every backend made `with_adapter`
        self.base_name = Path(str(model_path)).name
        self.adapter: str | None = None  # the peft adapter this backend decodes with (None: the base)
        self._name_adapter(adapter_path, version)
        if adapter_path is not None:
            self._load_adapter(adapter_path)
        # One long-lived generation thread: a 2-core CPU gains nothing from interleaving, and
        # torch's intra-op thread pool is per calling thread, so a fresh thread per reply
        # decoded ~25% slower than a thread that set its pool size once (bench/generation.py).
        threads = torch.get_num_threads()
        self._worker = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="generate", initializer=torch.set_num_threads,
            initargs=(threads,),
        )

    @property
    def model(self):
        return self._loaded.model

    def with_adapter(self, adapter_path: str | Path | None, version: str | None = None) -> TransformersBackend:
        """The same loaded model decoding with another adapter (None: the bare base), for
        promoting or rolling back a version while the app serves. Both backends stay usable:
        each generation selects its own adapter on the one generation thread, so a turn that
        started on the old version ends on it."""
        other = copy.copy(self)
        other._name_adapter(adapter_path, version)
        if adapter_path is not None:
            self._worker.submit(other._load_adapter, adapter_path).result()
        return other

    def _name_adapter(self, adapter_path: str | Path | None, version: str | None) -> None:
        self.prompt_format = chat.adapter_prompt_format(adapter_path)
        self.adapter = chat.adapter_name(adapter_path) if adapter_path else None
        self.version = chat.version_name(self.base_name, adapter_path, version)

    def _load_adapter(self, adapter_path: str | Path) -> None:
        from peft import PeftModel

        name = chat.adapter_name(adapter_path)
        with MODEL_LOADS:
            if not isinstance(self.model, PeftModel):
                self._loaded.model = PeftModel.from_pretrained(self.model, str(adapter_path), adapter_name=name).eval()
            elif name not in self.model.peft_config:
                self.model.load_adapter(str(adapter_path), adapter_name=name)
                self.model.eval()

    def _decode(self, **kwargs):
        """`model.generate` with this backend's adapter (on the generation thread)."""
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            return self.model.generate(**kwargs)
        if self.adapter is None:
            with self.model.disable_adapter():
                return self.model.generate(**kwargs)
        self.model.set_adapter(self.adapter)
        return self.model.generate(**kwargs)

    def prompt_text(self, messages: Sequence[ChatMessage]) -> str:
        return chat.prompt_text(self.tokenizer, messages)

    def prompt_ids(self, messages: Sequence[ChatMessage]):
        return self.tokenizer(self.prompt_text(messages), return_tensors="pt", add_special_tokens=False)

    def first_tokens(self, choices: Sequence[str]) -> set[int]:
        return chat.first_tokens(self.tokenizer, choices)

    def generation_kwargs(self, params: GenerationParams, prompt_length: int = 0,
                          choices: Sequence[Sequence[str]] = (), ruled_out: Sequence[Sequence[str]] = ()) -> dict:
        """`choices[i]`, `ruled_out[i]`: row i's first words and ruled-out openings (`GenerationParams`)."""
        sampling = params.temperature > 0
        kwargs = {
            "max_new_tokens": params.max_new_tokens,
            "min_new_tokens": params.min_new_tokens,
            "do_sample": sampling,
            "repetition_penalty": params.repetition_penalty,
            "pad_token_id": (self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
                             else self.tokenizer.eos_token_id),
        }
        if sampling:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        processors = []
        if any(choices):
            allowed = [self.first_tokens(options) if options else None for options in choices]
            # The move is chosen on the model's own scores: a repetition penalty would push it
            # away from moves already in the dialogue, so it applies from the second token on.
            processors.append(_FirstTokenIn(prompt_length, allowed))
            if params.repetition_penalty != 1.0:
                processors.append(_PenaltyAfterFirst(prompt_length, params.repetition_penalty))
            kwargs.update(repetition_penalty=1.0)
        banned = [chat.opening_sequences(self.tokenizer, tuple(openings)) for openings in ruled_out]
        if any(banned):
            processors.append(_SequencesBanned(prompt_length, banned))
        if processors:
            from transformers import LogitsProcessorList

            kwargs.update(logits_processor=LogitsProcessorList(processors))
        return kwargs

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Reply:
        reply = Reply()
        reply.pieces = self._stream(messages, params, reply)
        return reply

    def _stream(self, messages: Sequence[ChatMessage], params: GenerationParams, reply: Reply) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        inputs = self.prompt_ids(messages)
        length = inputs["input_ids"].shape[1]
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        abandoned = threading.Event()  # the reader went away: stop decoding for nobody

        class StopWhenAbandoned(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return abandoned.is_set()

        def run():
            try:
                with self._torch.inference_mode():
                    if params.seed is not None:
                        self._torch.manual_seed(params.seed)
                    return self._decode(
                        **inputs, **self.generation_kwargs(params, length, [params.choices], [params.ruled_out]),
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([StopWhenAbandoned()]),
                    )
            finally:
                streamer.end()  # harmless twice; unblocks the reader if generate failed early

        job = self._worker.submit(run)
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            abandoned.set()
        try:
            output = job.result()
        except Exception as error:
            raise ModelError(f"Generation failed: {error}") from error
        reply.truncated = self._cut(output[0, length:], params)

    def _cut(self, new_tokens, params: GenerationParams) -> bool:
        """The token limit stopped this reply (its last token is no end of turn)."""
        ends = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        return len(new_tokens) >= params.max_new_tokens and int(new_tokens[-1]) not in ends

    def generate_batch(
        self, conversations: Sequence[Sequence[ChatMessage]], params: GenerationParams, batch_size: int = 16,
        choices: Sequence[Sequence[str]] | None = None, ruled_out: Sequence[Sequence[str]] | None = None,
    ) -> list[Output]:
        """Whole replies for many prompts at once (evaluation): decoding is memory-bound on a
        CPU, so a batch of 16 costs little more per step than one prompt. `choices[i]` (if
        any) constrains reply i's first token, as `params.choices` does for one reply; so does
        `ruled_out[i]` its opening."""
        texts = [self.prompt_text(messages) for messages in conversations]
        choices = list(choices) if choices else [params.choices] * len(texts)
        ruled_out = list(ruled_out) if ruled_out else [params.ruled_out] * len(texts)
        # Batch prompts of similar length together: padding is work too (prefill dominates).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        texts = [texts[i] for i in order]
        choices = [choices[i] for i in order]
        ruled_out = [ruled_out[i] for i in order]
        replies: list[Output] = []
        padding_side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            for start in range(0, len(texts), batch_size):
                inputs = self.tokenizer(texts[start:start + batch_size], return_tensors="pt",
                                        padding=True, add_special_tokens=False)
                job = self._worker.submit(self._generate_tokens, inputs, params,
                                          choices[start:start + batch_size], ruled_out[start:start + batch_size])
                output = job.result()
                new = output[:, inputs["input_ids"].shape[1]:]
                texts_out = self.tokenizer.batch_decode(new, skip_special_tokens=True)
                replies += [Output(text, self._cut(row, params)) for text, row in zip(texts_out, new)]
        finally:
            self.tokenizer.padding_side = padding_side
        in_order = [Output("")] * len(replies)
        for position, index in enumerate(order):
            in_order[index] = replies[position]
        return in_order

    def _generate_tokens(self, inputs, params: GenerationParams, choices: Sequence[Sequence[str]],
                         ruled_out: Sequence[Sequence[str]] = ()):
        with self._torch.inference_mode():
            if params.seed is not None:
                self._torch.manual_seed(params.seed)
            kwargs = self.generation_kwargs(params, inputs["input_ids"].shape[1], choices, ruled_out)
            return self._decode(**inputs, **kwargs)


class _Loaded:
    """The one copy of the weights (and any adapters loaded into them)."""

    def __init__(self, model):
        self.model = model


class _FirstTokenIn:
    """A logits processor: the first generated token of row i must be in allowed[i] (None: any)."""

    def __init__(self, prompt_length: int, allowed: list[set[int] | None]):
        self.prompt_length, self.allowed = prompt_length, allowed

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] != self.prompt_length:
            return scores
        for row, ids in enumerate(self.allowed):
            if ids:
                keep = scores[row, list(ids)].clone()
                scores[row] = float("-inf")
                scores[row, list(ids)] = keep
        return scores



class _SequencesBanned:
    """A logits processor: row i never decodes a sequence of banned[i]'s last token right after
    its other tokens, all decoded (as the ONNX engine's ruled-out openings; transformers'
    `bad_words_ids` holds one list for every row of a batch, and reads the prompt too)."""

    def __init__(self, prompt_length: int, banned: list[tuple[tuple[int, ...], ...]]):
        self.prompt_length, self.banned = prompt_length, banned

    def __call__(self, input_ids, scores):
        decoded = input_ids.shape[1] - self.prompt_length
        for row, sequences in enumerate(self.banned):
            for *head, last in sequences:
                if len(head) <= decoded and input_ids[row, input_ids.shape[1] - len(head):].tolist() == head:
                    scores[row, last] = float("-inf")
        return scores


class _PenaltyAfterFirst:
    """transformers' repetition penalty, from the second generated token on."""

    def __init__(self, prompt_length: int, penalty: float):
        from transformers import RepetitionPenaltyLogitsProcessor

        self.prompt_length, self.penalty = prompt_length, RepetitionPenaltyLogitsProcessor(penalty)

    def __call__(self, input_ids, scores):
        return scores if input_ids.shape[1] == self.prompt_length else self.penalty(input_ids, scores)
