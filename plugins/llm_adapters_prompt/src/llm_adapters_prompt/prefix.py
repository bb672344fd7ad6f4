"""Prefix tuning (Li & Liang, 2021, "Prefix-Tuning: Optimizing Continuous Prompts for Generation").

Every attention layer ``l`` attends, besides the real tokens, to ``nv`` learned key/value pairs::

    head_j(x) = softmax(q_j [P_k^(l,g) ; K_g]^T / sqrt(d)) [P_v^(l,g) ; V_g]      g = the key/value head of j

The prefix is the output of an encoder over the virtual-token indices ``0 .. nv-1``:

* plain:       ``P = E``                            ``E: (nv, L * 2 * KV * d)``
* reparam.:    ``P = W2 tanh(W1 E + b1) + b2``      ``E: (nv, hidden)``, ``W1: (h, hidden)``, ``W2: (L*2*KV*d, h)``

``P`` is viewed as ``(nv, L, 2, KV, d)``: per layer a key and a value block for each of the model's ``KV``
key/value heads (``KV < heads`` under grouped-query attention; the reference assumed ``KV = heads``). The
prefix reaches the layers through the model's key/value cache (:mod:`llm_adapters_prompt.cache`), so no
model code is patched. Real tokens keep the positions they have without the prefix (``positions='from_zero'``)
or, as HF PEFT counts them, come after it (``'after_prefix'``: ``nv .. nv+n-1``); the prefix itself has no
position either way (its keys are used as stored, not rotated).

Initialisation: ``random`` draws ``E ~ N(0, 1)`` (``nn.Embedding``'s default, as the reference); ``text``
sets the plain prefix to the keys and values the model itself computes for a text's tokens, so the adapted
model starts out as the base model having read that text (Li & Liang, section 7.2).

Parameter count (plain): ``nv * L * 2 * KV * d``; on LLaMA-7B with ``nv = 10``: 10 * 32 * 2 * 4096 = 2,621,440,
the reference's count.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.cache_utils import Cache

from llm_adapters import AttentionDims

from .adapter_types import PrefixTuning as PrefixTuning  # re-exported: the type moved there
from .base import PromptAdapter
from .cache import PrefixCache, PrefixLayer, mark, real_length
from .config import PrefixConfig
from .inputs import (
    check_mask,
    checkpointing_in_training,
    checkpointing_layers,
    extend_mask,
    input_shape,
    real_positions,
    reentrant_checkpointing,
    takes_positions,
    use_cache_keyword,
)

#: instance attribute transformers reads on checkpointed layers: keep the cache under checkpointing
KEEP_CACHE_FLAG = "_can_checkpoint_with_cache"


class PrefixEncoder(nn.Module):
    """``forward() -> (nv, L * 2 * KV * d)``: the prefix table, optionally through the reparameterisation MLP."""

    def __init__(self, num_virtual_tokens: int, dims: AttentionDims, projection: bool, hidden: int | None) -> None:
        super().__init__()
        self.dims = dims
        width = dims.num_layers * 2 * dims.num_key_value_heads * dims.head_dim
        # nn.Embedding's N(0, 1) initialisation, as the reference
        self.embedding = nn.Embedding(num_virtual_tokens, dims.hidden_size if projection else width)
        self.transform: nn.Module | None = None
        if projection:
            h = hidden or dims.hidden_size
            self.transform = nn.Sequential(nn.Linear(dims.hidden_size, h), nn.Tanh(), nn.Linear(h, width))

    def forward(self) -> torch.Tensor:
        table = self.embedding.weight  # (nv, width) or (nv, hidden)
        if self.transform is not None:
            table = self.transform(table)  # (nv, width)
        return table

    def key_values(self, batch: int, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer ``(keys, values)``, each ``(batch, KV, nv, d)``."""
        d = self.dims
        table = self()  # (nv, L * 2 * KV * d)
        nv = table.shape[0]
        blocks = table.view(nv, d.num_layers, 2, d.num_key_value_heads, d.head_dim)
        blocks = blocks.permute(1, 2, 3, 0, 4).to(dtype)  # (L, 2, KV, nv, d)
        return [
            (blocks[i, 0].expand(batch, -1, -1, -1), blocks[i, 1].expand(batch, -1, -1, -1))  # (batch, KV, nv, d)
            for i in range(d.num_layers)
        ]


class PrefixAdapter(PromptAdapter):
    """The model-level module of a ``prefix`` adapter: fills the cache, extends the mask, fixes positions."""

    def __init__(self, config: PrefixConfig, dims: AttentionDims) -> None:
        super().__init__("prefix", config.num_virtual_tokens)
        self.encoder = PrefixEncoder(
            config.num_virtual_tokens, dims, config.prefix_projection, config.encoder_hidden_size
        )
        #: added to the real tokens' positions: 0, or nv under PEFT's convention
        self.position_shift = config.num_virtual_tokens if config.positions == "after_prefix" else 0

    def prompt_table(self) -> torch.Tensor:
        """The encoder output ``(nv, L * 2 * KV * d)`` (the reference saved this one tensor)."""
        return self.encoder()

    def pre_forward(self, model: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs = dict(kwargs)
        use_cache_keyword(model, kwargs)
        self.check_cache(kwargs.get("cache"))
        check_mask(kwargs, self.adapter)
        cache: Cache | None = kwargs.get("cache")
        batch, length, device = input_shape(kwargs)
        checkpointing = checkpointing_in_training(model)
        if checkpointing and reentrant_checkpointing(model):
            raise ValueError(
                "adapter 'prefix': gradient checkpointing with use_reentrant=True cannot train a prefix (it reaches "
                "the layers through the cache, which reentrant checkpointing does not differentiate); enable it "
                "with gradient_checkpointing_kwargs={'use_reentrant': False}, the default of transformers 5"
            )
        past = 0
        if self.is_fresh(cache):
            cache = self._fill(model, cache, batch, kwargs, checkpointing)
            kwargs["cache"] = cache
        else:
            past = real_length(cache)
        if checkpointing and not getattr(cache, "frozen", False):
            raise ValueError(
                "adapter 'prefix': under gradient checkpointing in training, pass no cache (transformers drops it in "
                "checkpointed layers, which would drop the prefix)"
            )
        if takes_positions(model):
            kwargs["position_ids"] = real_positions(kwargs, length, past, device) + self.position_shift
        extend_mask(kwargs, self.num_virtual_tokens)
        self._restore(model)
        if checkpointing:
            self._keep_cache_under_checkpointing(model)
        return args, kwargs

    def _keep_cache_under_checkpointing(self, model: nn.Module) -> None:
        """Let the checkpointed layers read the frozen prefix cache: it is read-only, so replaying a layer in
        the backward reads the same states. Layers declare that with ``_can_checkpoint_with_cache``; models
        that drop the cache themselves under checkpointing (GPT-2) see their model-level flag off for this
        forward (their layers still checkpoint, by their own flag)."""
        layers = checkpointing_layers(model)
        for layer in layers:
            setattr(layer, KEEP_CACHE_FLAG, True)
        ids = {id(layer) for layer in layers}
        switched = [m for m in model.modules() if id(m) not in ids and getattr(m, "gradient_checkpointing", False)]
        for module in switched:
            module.gradient_checkpointing = False
        # plain lists in __dict__, not registered as submodules
        self.__dict__["_flagged"] = layers
        self.__dict__["_switched"] = switched

    def _restore(self, model: nn.Module) -> None:
        """Undo :meth:`_keep_cache_under_checkpointing`."""
        for layer in self.__dict__.pop("_flagged", []):
            layer.__dict__.pop(KEEP_CACHE_FLAG, None)
        for module in self.__dict__.pop("_switched", []):
            module.gradient_checkpointing = True

    def _fill(self, model: nn.Module, cache: Cache | None, batch: int, kwargs: dict, checkpointing: bool) -> Cache:
        own = cache is None
        if cache is None:
            cache = PrefixCache(self.encoder.dims.num_layers)
        dtype = model.get_input_embeddings().weight.dtype
        for i, (k, v) in enumerate(self.encoder.key_values(batch, dtype)):
            _update(cache, k, v, i)
        if own and (checkpointing or kwargs.get("use_cache") is False):
            cache.freeze()  # nothing will read this cache after the forward: keep it from growing
        mark(cache, self.uid, self.num_virtual_tokens)
        return cache

    def post_forward(self, model: nn.Module, kwargs: dict, output: Any) -> Any:
        self._restore(model)
        return output

    def on_detach(self, model: nn.Module) -> None:
        self._restore(model)


def _update(cache: Cache, keys: torch.Tensor, values: torch.Tensor, layer_idx: int) -> None:
    """``cache.update`` that also writes into a frozen :class:`PrefixLayer` (a second prefix adapter)."""
    layer = cache.layers[layer_idx] if layer_idx < len(cache.layers) else None
    frozen = isinstance(layer, PrefixLayer) and layer.frozen
    if frozen:
        layer.frozen = False  # type: ignore[union-attr]
    try:
        cache.update(keys, values, layer_idx)
    finally:
        if frozen:
            layer.frozen = True  # type: ignore[union-attr]


@torch.no_grad()
def own_key_values(model: nn.Module, ids: list[int]) -> torch.Tensor:
    """The prefix table ``(nv, L * 2 * KV * d)`` holding the keys and values ``model`` itself caches for the
    tokens ``ids`` (read at positions 0 .. nv-1, in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        tokens = torch.tensor([ids], device=model.get_input_embeddings().weight.device)
        cache = model(input_ids=tokens, use_cache=True).cache
    finally:
        model.train(was_training)
    nv = len(ids)  # the real tokens are the last nv entries (other active prompt adapters may come first)
    keys = torch.stack([layer.keys[0, :, -nv:] for layer in cache.layers])  # (L, KV, nv, d)
    values = torch.stack([layer.values[0, :, -nv:] for layer in cache.layers])  # (L, KV, nv, d)
    blocks = torch.stack([keys, values], dim=1)  # (L, 2, KV, nv, d)
    return blocks.permute(3, 0, 1, 2, 4).reshape(nv, -1).float()  # (nv, L * 2 * KV * d)
