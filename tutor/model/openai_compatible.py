"""Any OpenAI-compatible chat endpoint: llama.cpp server, vLLM, Ollama, hosted APIs."""

from __future__ import annotations

import json
from typing import Iterator, Sequence

import httpx

from tutor.domain.prompting import INSTRUCT, ChatMessage
from tutor.errors import ModelError
from tutor.model.backend import GenerationParams, Reply


class OpenAICompatibleBackend:
    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.version = f"openai:{model}"
        self.prompt_format = INSTRUCT  # a hosted chat model is told the planned move in words
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport)

    def generate(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Reply:
        reply = Reply()
        reply.pieces = self._stream(messages, params, reply)
        return reply

    def _stream(self, messages: Sequence[ChatMessage], params: GenerationParams, reply: Reply) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        try:
            with self._client.stream("POST", f"{self.base_url}/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise ModelError(
                        f"The model endpoint answered {response.status_code}: {response.text[:200]}"
                    )
                yield from _content_pieces(response.iter_lines(), reply)
        except httpx.HTTPError as error:
            raise ModelError(f"Could not reach the model endpoint {self.base_url}: {error}") from error


def _content_pieces(lines: Iterator[str], reply: Reply | None = None) -> Iterator[str]:
    """The text deltas of a server-sent-events chat completion stream (the reply learns whether
    the server stopped it at the token limit)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[len("data:"):].strip()
        if data == "[DONE]":
            return
        try:
            choices = json.loads(data).get("choices") or []
        except json.JSONDecodeError as error:
            raise ModelError(f"The model endpoint sent an unreadable event: {data[:200]}") from error
        for choice in choices:
            if reply is not None and choice.get("finish_reason") == "length":
                reply.truncated = True
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
