"""The key/value cache that carries a prefix, and the bookkeeping of virtual tokens held in any cache.

Prefix tuning hands its per-layer keys and values to the model through transformers' cache API: a cache
whose layer ``i`` already holds ``nv`` entries ``(batch, kv_heads, nv, head_dim)`` before the first real
token arrives. Every attention layer then reads ``cat(prefix, new)`` from ``cache.update(k, v, i)``, the
causal mask is sized by ``cache.get_mask_sizes`` and the positions by ``cache.get_seq_length()`` (which is
why :mod:`llm_adapters_prompt.inputs` passes explicit positions).

:class:`PrefixCache` is a ``DynamicCache`` whose layers can be *frozen*: ``update`` then returns the
concatenation without storing it. A frozen cache is read-only, which is what gradient checkpointing needs
(the backward pass replays each layer, and a growing cache would be grown twice); transformers keeps a cache
under checkpointing for layers that declare ``_can_checkpoint_with_cache``.

Caches also record which adapters' virtual tokens they hold (:func:`virtual_tokens`), so that the next
forward (the next generation step) knows the prefix is already there and how many cached entries are real.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

#: attribute on a Cache object: {adapter uid: number of virtual entries it put in the cache}
MARK_ATTR = "_llm_adapters_virtual_tokens"


class PrefixLayer(DynamicLayer):
    """A dynamic cache layer that can stop growing (``frozen``): then ``update`` only reads."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.frozen:
            return super().update(key_states, value_states, *args, **kwargs)
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        # (batch, kv_heads, cached + new, head_dim), nothing stored
        return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)


class PrefixCache(DynamicCache):
    """A ``DynamicCache`` of :class:`PrefixLayer` layers, one per decoder layer."""

    def __init__(self, num_layers: int) -> None:
        Cache.__init__(self, layers=[PrefixLayer() for _ in range(num_layers)])

    def freeze(self) -> None:
        """Make every layer read-only (for a training forward under gradient checkpointing)."""
        for layer in self.layers:
            layer.frozen = True

    @property
    def frozen(self) -> bool:
        return any(getattr(layer, "frozen", False) for layer in self.layers)


def virtual_tokens(cache: object) -> dict[str, int]:
    """``{adapter uid: count}`` of the virtual entries recorded on ``cache`` (empty for None / unmarked)."""
    return dict(getattr(cache, MARK_ATTR, None) or {})


def mark(cache: object, uid: str, count: int) -> None:
    """Record that ``cache`` holds ``count`` virtual entries of the adapter ``uid``."""
    marks = virtual_tokens(cache)
    marks[uid] = count
    setattr(cache, MARK_ATTR, marks)


def real_length(cache: Cache | None) -> int:
    """How many cached entries are real tokens (the cache's length minus every virtual entry it holds)."""
    if cache is None:
        return 0
    return cache.get_seq_length() - sum(virtual_tokens(cache).values())
