"""What the three prompt-based model-level adapters share: identity, size, and the fresh / continuing test."""

from __future__ import annotations

import uuid

import torch
from transformers.cache_utils import Cache

from llm_adapters import ModelAdapter

from .cache import real_length, virtual_tokens


class PromptAdapter(ModelAdapter):
    """A model-level adapter that puts ``num_virtual_tokens`` virtual entries in front of the real tokens.

    A forward is *fresh* when the cache it receives does not hold this adapter's virtual entries yet (no
    cache, or an empty one such as ``generate`` makes for its first step): the adapter then adds them. It is
    *continuing* when they are there (the later steps of ``generate``): the adapter only extends the
    attention mask and the positions.
    """

    def __init__(self, adapter: str, num_virtual_tokens: int) -> None:
        super().__init__()
        self.adapter = adapter
        self.num_virtual_tokens = num_virtual_tokens
        self.uid = uuid.uuid4().hex  # names this instance in the caches it fills

    def prompt_table(self) -> torch.Tensor:
        """The encoder output over the virtual tokens (what :mod:`llm_adapters_prompt.export` writes)."""
        raise NotImplementedError

    def check_cache(self, cache: Cache | None) -> None:
        if cache is not None and getattr(cache, "is_compileable", False):
            raise ValueError(
                f"adapter {self.adapter!r}: static (compileable) caches are not supported, as they are sized and "
                "masked for the real tokens only; generate with the default dynamic cache (no "
                "cache_implementation='static')"
            )

    def is_fresh(self, cache: Cache | None) -> bool:
        if self.uid in virtual_tokens(cache):
            return False
        if cache is not None and real_length(cache) > 0:
            raise ValueError(
                f"adapter {self.adapter!r}: the cache passed in already holds {real_length(cache)} token(s) computed "
                "without this adapter's virtual tokens; start from an empty cache (or none) with the adapter active"
            )
        return True

    def extra_repr(self) -> str:
        return f"num_virtual_tokens={self.num_virtual_tokens}"
