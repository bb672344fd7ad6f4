"""Virtual tokens prepended to the input embeddings: what prompt tuning and P-tuning share.

For a fresh forward with ``n`` real tokens and a table ``T: (nv, hidden)`` of virtual-token embeddings::

    inputs_embeds = [T ; embed(input_ids)]          (batch, nv + n, hidden)
    attention_mask = [1 ... 1 ; mask]               (batch, nv + past + n)
    labels         = [-100 ... -100 ; labels]       (batch, nv + n)      the virtual positions carry no loss
    position_ids   = [0 .. nv-1 ; real + nv]        the virtual tokens come first in the sequence

The logits of the virtual positions are removed after the forward, so the caller gets ``(batch, n, vocab)``
as without the adapter. On the following generation steps the virtual tokens are in the cache, and only the
mask and positions are extended.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import PromptAdapter
from .cache import mark, real_length, virtual_tokens
from .inputs import check_mask, extend_mask, input_shape, real_positions, takes_positions, use_cache_keyword

IGNORE_INDEX = -100


class VirtualTokenAdapter(PromptAdapter):
    """Base of ``prompt`` and ``ptuning``: subclasses give :meth:`prompt_table`."""

    def __init__(self, adapter: str, num_virtual_tokens: int) -> None:
        super().__init__(adapter, num_virtual_tokens)
        self._strip: int | None = None  # real tokens of the current fresh forward, whose logits are kept

    def pre_forward(self, model: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs = dict(kwargs)
        use_cache_keyword(model, kwargs)
        self.check_cache(kwargs.get("cache"))
        check_mask(kwargs, self.adapter)
        cache = kwargs.get("cache")
        batch, length, device = input_shape(kwargs)
        nv = self.num_virtual_tokens
        fresh = self.is_fresh(cache)
        if takes_positions(model):
            real = real_positions(kwargs, length, real_length(cache), device)  # (batch or 1, n)
            if fresh:
                virtual = torch.arange(nv, device=real.device, dtype=real.dtype).expand(real.shape[0], nv)
                kwargs["position_ids"] = torch.cat([virtual, real + nv], dim=1)  # (batch or 1, nv + n)
            else:
                kwargs["position_ids"] = real + nv
        extend_mask(kwargs, nv)
        self._strip = None
        if fresh:
            self._prepend(model, kwargs, batch)
            if cache is not None:
                mark(cache, self.uid, nv)
            self._strip = length
        return args, kwargs

    def _prepend(self, model: nn.Module, kwargs: dict, batch: int) -> None:
        embeds = kwargs.get("inputs_embeds")
        if embeds is None:
            embeds = model.get_input_embeddings()(kwargs["input_ids"])  # (batch, n, hidden)
        kwargs["input_ids"] = None
        table = self.prompt_table().to(dtype=embeds.dtype, device=embeds.device)  # (nv, hidden)
        kwargs["inputs_embeds"] = torch.cat([table.expand(batch, -1, -1), embeds], dim=1)  # (batch, nv + n, hidden)
        nv = self.num_virtual_tokens
        labels = kwargs.get("labels")
        if labels is not None:
            pad = torch.full((labels.shape[0], nv), IGNORE_INDEX, dtype=labels.dtype, device=labels.device)
            kwargs["labels"] = torch.cat([pad, labels], dim=1)
        token_types = kwargs.get("token_type_ids")
        if token_types is not None:
            kwargs["token_type_ids"] = torch.cat([token_types.new_zeros(token_types.shape[0], nv), token_types], 1)

    def post_forward(self, model: nn.Module, kwargs: dict, output: Any) -> Any:
        keep, self._strip = self._strip, None
        if keep is None:
            return output
        nv = self.num_virtual_tokens
        if isinstance(output, tuple):
            idx = 1 if kwargs.get("labels") is not None else 0
            logits = output[idx]
            if logits.shape[1] > keep:
                output = (*output[:idx], logits[:, -keep:], *output[idx + 1 :])
            return output
        logits = getattr(output, "logits", None)
        if logits is not None and logits.shape[1] > keep:
            output.logits = logits[:, -keep:]  # (batch, n, vocab): the real tokens' logits
        cache = output.get("cache", None)
        if cache is not None and self.uid not in virtual_tokens(cache) and cache.get_seq_length() >= nv:
            mark(cache, self.uid, nv)  # a cache the model made itself: its next forward continues from it
        return output
