"""The served model: the base, its tokenizer and its adapters, loaded once, and what turns a request into token
ids (the model itself is only ever touched by the scheduler's thread, see :mod:`.scheduler`).

Model names: the base is served as ``--served-model-name`` (default: the ``--model`` value); each adapter as its
``NAME`` (``--adapter-path NAME=DIR``) or its directory's name, which is also its adapter name on the model, so
a request's ``model`` is the row's ``adapter_names`` entry.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_adapters.errors import ConfigError

from .errors import context_length_exceeded, invalid, model_not_found
from .prompts import ChatFormatter
from .protocol import GenerationRequest

BASE_ROUTE = "__base__"  # the per-row routing name of the base model (no adapter)
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def parse_adapter_spec(spec: str) -> tuple[str, Path]:
    """``NAME=DIR`` or ``DIR`` (named after the directory) -> ``(name, directory)``. An existing directory
    whose own name holds ``=`` is taken as a directory."""
    from llm_adapters.engine.state import NAME_RE

    if "=" in spec and not Path(spec).is_dir():
        name, _, directory = spec.partition("=")
        path = Path(directory)
        if not NAME_RE.match(name):
            raise ConfigError(
                f"--adapter-path {spec}: {name!r} is not a usable model name (a letter, then letters, digits, "
                "'-' or '_')"
            )
    else:
        path = Path(spec)
        name = path.resolve().name
        if not NAME_RE.match(name):
            raise ConfigError(
                f"--adapter-path {spec}: the directory name {name!r} is not a usable model name (a letter, then "
                "letters, digits, '-' or '_'); name it: --adapter-path NAME=DIR"
            )
    if not path.is_dir():
        raise ConfigError(f"--adapter-path {spec}: {str(path)!r} is not a directory")
    return name, path


def context_length(model: Any, tokenizer: Any) -> int | None:
    """The most tokens (prompt and completion) the model takes: its config's position limit, else the
    tokenizer's ``model_max_length`` when that is a real limit, else None (no limit known)."""
    config = getattr(model, "config", None)
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**7 else None


@dataclass
class ModelHost:
    """A loaded base model with its adapters (attached under their served names, none active)."""

    model: Any
    tokenizer: Any
    base_name: str
    adapters: dict[str, str] = field(default_factory=dict)  # served name -> the directory it came from
    template: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if self.base_name in self.adapters:
            raise ConfigError(
                f"the base model and an adapter are both named {self.base_name!r}; rename the adapter "
                "(--adapter-path NAME=DIR) or the base (--served-model-name)"
            )
        # Handler threads tokenize on their own copy: the scheduler's thread uses the original for decoding,
        # and a fast tokenizer must not be used by two threads at once.
        self._encoder = copy.deepcopy(self.tokenizer)
        self._lock = threading.Lock()
        self.formatter = ChatFormatter(self._encoder, self.template)
        self.context = context_length(self.model, self.tokenizer)
        self.vocab_size = int(self.model.get_input_embeddings().num_embeddings)
        from llm_adapters_eval.generation import eos_ids, pad_id

        self.eos_ids = eos_ids(self.model, self.tokenizer)
        self.pad_id = pad_id(self.model, self.tokenizer)

    # ---- loading ---------------------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model: str | None,
        adapter_specs: Sequence[str] = (),
        *,
        served_model_name: str | None = None,
        template: str | None = None,
        dtype: str = "auto",
        quantize: str | None = None,
    ) -> ModelHost:
        """Load the base model (``llm_adapters.load_model``) and every adapter directory, and check that the
        adapters can be routed per row."""
        import llm_adapters as la
        from llm_adapters.models import default_model

        if template is not None:
            la.get_template(template)  # a misspelt name fails before the model loads
        specs = [parse_adapter_spec(s) for s in adapter_specs]
        names = [n for n, _ in specs]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ConfigError(f"--adapter-path: the name {doubles[0]!r} is given twice; name them: NAME=DIR")
        name_or_path = model or default_model()
        kwargs: dict[str, Any] = {"dtype": dtype}
        if quantize is not None:
            kwargs["quantize"] = quantize
        lm, tokenizer = la.load_model(name_or_path, **kwargs)
        for name, directory in specs:
            la.load_adapter(lm, directory, name=name)
        host = cls(lm, tokenizer, served_model_name or name_or_path, {n: str(d) for n, d in specs}, template)
        host.prepare()
        return host

    def prepare(self) -> None:
        """No adapter active (a batch of base rows runs the plain model), and one routed forward pass through
        every adapter, so an adapter that cannot be routed per row fails now, not on a request."""
        if not self.adapters:
            return
        import torch

        import llm_adapters as la

        la.set_active(self.model, [])
        routes = [BASE_ROUTE, *self.adapters]
        device = next(self.model.parameters()).device
        ids = torch.full((len(routes), 1), self.eos_ids[0] if self.eos_ids else 0, device=device)
        try:
            with torch.inference_mode():
                self.model(input_ids=ids, adapter_names=routes)
        except Exception as exc:
            raise ConfigError(f"the adapters {', '.join(self.adapters)} cannot be served together: {exc}") from None

    # ---- requests --------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every served model name: the base first, then the adapters."""
        return [self.base_name, *self.adapters]

    def route(self, model: str) -> str | None:
        """The adapter a request's ``model`` names (None: the base); 404 for an unknown name."""
        if model == self.base_name:
            return None
        if model in self.adapters:
            return model
        raise model_not_found(model, self.names())

    def encode(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids. Text is tokenized as ``llm-adapters generate`` does (the tokenizer's special
        tokens added); a chat template's text that already starts with the BOS token gets no second one."""
        if request.prompt_ids is not None:
            bad = [t for t in request.prompt_ids if t >= self.vocab_size]
            if bad:
                raise invalid("prompt", f"token id {bad[0]} is outside the vocabulary (0..{self.vocab_size - 1}).")
            return list(request.prompt_ids)
        with self._lock:
            if request.messages is not None:
                text = self.formatter.render(request.messages)
                bos = getattr(self._encoder, "bos_token", None)
                specials = not (self.formatter.uses_tokenizer_template and bos and text.startswith(bos))
            else:
                assert request.prompt is not None
                text, specials = request.prompt, True
            ids = list(self._encoder(text, add_special_tokens=specials)["input_ids"])
        if not ids:
            raise invalid(request.input_param, "The prompt is empty after tokenization.")
        return ids

    def budget(self, request: GenerationRequest, prompt_tokens: int, default_max_tokens: int) -> int:
        """How many new tokens the request may generate: its ``max_tokens`` (400 when the prompt and it do not
        fit the context), else OpenAI's default of 16 for completions and ``default_max_tokens`` for chat,
        cut to what the context leaves."""
        limit = self.context
        if request.max_tokens is not None:
            if limit is not None and prompt_tokens + request.max_tokens > limit:
                raise context_length_exceeded(request.input_param, limit, prompt_tokens, request.max_tokens)
            return request.max_tokens
        wanted = 16 if request.kind == "completion" else default_max_tokens
        if limit is None:
            return wanted
        if prompt_tokens >= limit:
            raise context_length_exceeded(request.input_param, limit, prompt_tokens, None)
        return min(wanted, limit - prompt_tokens)
