"""OpenAI request parsing and response shapes for ``/v1/completions`` and ``/v1/chat/completions``. No torch.

A request body is checked field by field; the first bad field raises an :class:`~.errors.APIError` (400) that
names it. Parameters this server does not implement are refused when set to anything but their neutral value
(``n`` > 1, ``logprobs``, ``echo``, penalties, ``logit_bias``, tools), so a client never silently gets less than
it asked for. Unknown fields (``user``, ``metadata``, ...) are ignored, as most OpenAI-compatible servers do.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import APIError, invalid, missing, unsupported

ROLES = ("system", "developer", "user", "assistant")
MAX_STOP = 4

# field -> values that mean "not used"; anything else is refused with a 400
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "best_of": (None, 1),
    "echo": (None, False),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "suffix": (None, ""),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}),
}


@dataclass
class GenerationRequest:
    """One parsed request. ``prompt`` (completions, text), ``prompt_ids`` (completions, token ids) or
    ``messages`` (chat) holds the input; ``max_tokens`` None means "as the endpoint's default"."""

    kind: Literal["completion", "chat"]
    model: str
    prompt: str | None = None
    prompt_ids: list[int] | None = None
    messages: list[dict[str, str]] | None = None
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    id: str = field(default_factory=str)
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if not self.id:
            prefix = "chatcmpl" if self.kind == "chat" else "cmpl"
            self.id = f"{prefix}-{secrets.token_hex(12)}"

    @property
    def input_param(self) -> str:
        """The request field that holds the input (for errors about it)."""
        return "messages" if self.kind == "chat" else "prompt"


# ---- parsing ---------------------------------------------------------------------------------------
def _number(body: dict[str, Any], name: str, default: float, low: float, high: float, *, open_low: bool) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(name, f"'{name}' must be a number, got {value!r}.")
    below = value <= low if open_low else value < low
    if below or value > high:
        bracket = "(" if open_low else "["
        raise invalid(name, f"'{name}' must be in {bracket}{low:g}, {high:g}], got {value!r}.")
    return float(value)


def _integer(body: dict[str, Any], name: str, low: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"'{name}' must be an integer, got {value!r}.")
    if low is not None and value < low:
        raise invalid(name, f"'{name}' must be at least {low}, got {value}.")
    return value


def _seed(body: dict[str, Any]) -> int | None:
    seed = _integer(body, "seed", 0)
    if seed is not None and seed >= 2**63:
        raise invalid("seed", f"'seed' must be below 2**63, got {seed}.")
    return seed


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise invalid("stop", f"'stop' must be a string or a list of strings, got {value!r}.")
    if len(items) > MAX_STOP:
        raise invalid("stop", f"'stop' holds at most {MAX_STOP} sequences, got {len(items)}.")
    if any(s == "" for s in items):
        raise invalid("stop", "'stop' sequences must not be empty strings.")
    return tuple(items)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for name, neutral in _NEUTRAL.items():
        if name in body and not any(body[name] == v and type(body[name]) is type(v) for v in neutral):
            hint = "send one request per choice" if name in ("n", "best_of") else "leave it out"
            raise unsupported(name, f"'{name}'={body[name]!r} is not supported by this server; {hint}.")


def _prompt(body: dict[str, Any]) -> tuple[str | None, list[int] | None]:
    if "prompt" not in body or body["prompt"] is None:
        raise missing("prompt")
    value = body["prompt"]
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (str, list)):
        value = value[0]  # one prompt in a list: [text] or [[ids]]
    if isinstance(value, str):
        if not value:
            raise invalid("prompt", "'prompt' is empty.")
        return value, None
    if isinstance(value, list) and value and all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        if any(t < 0 for t in value):
            raise invalid("prompt", "'prompt' token ids must not be negative.")
        return None, list(value)
    if isinstance(value, list) and len(value) > 1 and all(isinstance(p, (str, list)) for p in value):
        raise unsupported("prompt", "Several prompts in one request are not supported: send one request per prompt.")
    raise invalid("prompt", "'prompt' must be a non-empty string, a list of token ids, or a list holding one of them.")


def _content(message: dict[str, Any], i: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise unsupported(
                    f"messages[{i}].content", f"messages[{i}].content: only text parts are supported, got {part!r}."
                )
            parts.append(part["text"])
        return "".join(parts)
    if content is None:
        raise missing(f"messages[{i}].content")
    raise invalid(f"messages[{i}].content", f"messages[{i}].content must be a string or a list of text parts.")


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    value = body.get("messages")
    if value is None:
        raise missing("messages")
    if not isinstance(value, list) or not value:
        raise invalid("messages", "'messages' must be a non-empty list of messages.")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise invalid(f"messages[{i}]", f"messages[{i}] must be an object with 'role' and 'content'.")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(f"messages[{i}].role", f"messages[{i}].role must be one of {', '.join(ROLES)}, got {role!r}.")
        if message.get("tool_calls") or message.get("function_call"):
            raise unsupported(f"messages[{i}]", f"messages[{i}]: tool and function calls are not supported.")
        out.append({"role": "system" if role == "developer" else role, "content": _content(message, i)})
    return out


def parse_request(kind: Literal["completion", "chat"], body: Any) -> GenerationRequest:
    """Check a request body and return what it asks for; raises :class:`APIError` (400) on the first bad field."""
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", f"'model' must be a non-empty string, got {model!r}.")
    _refuse_unsupported(body)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream", f"'stream' must be true or false, got {stream!r}.")
    options = body.get("stream_options")
    if options is not None and not (
        isinstance(options, dict) and isinstance(options.get("include_usage", False), bool)
    ):
        raise invalid("stream_options", "'stream_options' must be an object like {\"include_usage\": true}.")
    max_tokens = _integer(body, "max_tokens", 1)
    if kind == "chat" and body.get("max_completion_tokens") is not None:
        newer = _integer(body, "max_completion_tokens", 1)
        assert newer is not None
        max_tokens = newer if max_tokens is None else min(max_tokens, newer)
    request = GenerationRequest(
        kind=kind,
        model=model,
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0, open_low=False),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0, open_low=True),
        top_k=_integer(body, "top_k", 0) or 0,
        seed=_seed(body),
        stop=_stop(body),
        stream=bool(stream),
        include_usage=bool(stream and options and options.get("include_usage")),
    )
    if kind == "chat":
        request.messages = _messages(body)
    else:
        request.prompt, request.prompt_ids = _prompt(body)
    return request


# ---- responses -------------------------------------------------------------------------------------
def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _envelope(request: GenerationRequest, chunk: bool) -> dict[str, Any]:
    if request.kind == "chat":
        obj = "chat.completion.chunk" if chunk else "chat.completion"
    else:
        obj = "text_completion"
    return {"id": request.id, "object": obj, "created": request.created, "model": request.model}


def response(
    request: GenerationRequest, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """The whole answer of a request that does not stream."""
    if request.kind == "chat":
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
    else:
        choice = {"index": 0, "text": text}
    choice.update(finish_reason=finish_reason, logprobs=None)
    return {**_envelope(request, False), "choices": [choice], "usage": usage(prompt_tokens, completion_tokens)}


def chunk(
    request: GenerationRequest, text: str | None, finish_reason: str | None = None, *, first: bool = False
) -> dict[str, Any]:
    """One streamed event: a piece of text, or (``finish_reason`` set, ``text`` None) the end of the choice."""
    if request.kind == "chat":
        delta: dict[str, Any] = {}
        if first:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        choice: dict[str, Any] = {"index": 0, "delta": delta}
    else:
        choice = {"index": 0, "text": text or ""}
    choice.update(finish_reason=finish_reason, logprobs=None)
    out = {**_envelope(request, True), "choices": [choice]}
    if request.include_usage:
        out["usage"] = None
    return out


def usage_chunk(request: GenerationRequest, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The last event when ``stream_options.include_usage`` is set: no choices, the usage."""
    return {**_envelope(request, True), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}


def model_entry(name: str, created: int, parent: str | None) -> dict[str, Any]:
    """One entry of ``GET /v1/models``; adapters name the base they sit on as ``parent`` (as vLLM does)."""
    return {"id": name, "object": "model", "created": created, "owned_by": "llm-adapters", "parent": parent}
