"""Reading and extending the keyword arguments of one forward call of a transformers causal LM.

Conventions shared by the three methods (see ``docs/prompt-methods.md``):

* ``attention_mask`` is 2-D ``(batch, past + new)`` over *real* tokens, as callers and ``generate`` give it;
  each adapter prepends one column of ones per virtual entry it holds in the cache or the input.
* ``position_ids``, when the caller gives them, count real tokens only (``generate`` derives them from the
  attention mask). When the caller gives none, they are derived the same way: ``cumsum(mask) - 1`` (0 on
  padding), or ``past .. past + new - 1`` without a mask. Models whose forward takes no ``position_ids``
  (BLOOM: ALiBi) derive positions from the extended mask themselves.
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer


@functools.lru_cache(maxsize=64)
def _parameters_of(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


def forward_parameters(model: nn.Module) -> frozenset[str]:
    """Names of the parameters of ``model.forward``."""
    return _parameters_of(type(model))


def use_cache_keyword(model: nn.Module, kwargs: dict) -> None:
    """Move a legacy ``past_key_values`` argument to ``cache`` (the name transformers 5 models take)."""
    if "past_key_values" in kwargs and "cache" in forward_parameters(model):
        legacy = kwargs.pop("past_key_values")
        if kwargs.get("cache") is None:
            kwargs["cache"] = legacy


def input_shape(kwargs: dict) -> tuple[int, int, torch.device]:
    """``(batch, new tokens, device)`` of this call, from ``input_ids`` or ``inputs_embeds``."""
    ids = kwargs.get("input_ids")
    if ids is not None:
        return ids.shape[0], ids.shape[1], ids.device
    embeds = kwargs.get("inputs_embeds")
    if embeds is not None:
        return embeds.shape[0], embeds.shape[1], embeds.device
    raise ValueError("prompt-based adapters need input_ids or inputs_embeds")


def check_mask(kwargs: dict, adapter: str) -> None:
    mask = kwargs.get("attention_mask")
    if mask is not None and mask.dim() != 2:
        raise ValueError(
            f"adapter {adapter!r}: pass a 2-D attention_mask (batch, length) over the real tokens, got shape "
            f"{tuple(mask.shape)}; the adapter extends it by its virtual tokens"
        )


def extend_mask(kwargs: dict, count: int) -> None:
    """Prepend ``count`` columns of ones to a 2-D ``attention_mask`` (left unchanged when absent)."""
    mask = kwargs.get("attention_mask")
    if mask is None:
        return
    ones = torch.ones(mask.shape[0], count, dtype=mask.dtype, device=mask.device)
    kwargs["attention_mask"] = torch.cat([ones, mask], dim=1)  # (batch, count + past + new)


def real_positions(kwargs: dict, length: int, past: int, device: torch.device) -> torch.Tensor:
    """Positions of the ``length`` new real tokens: the caller's ``position_ids``, or derived from the
    (not yet extended) attention mask as ``generate`` does, or ``past .. past + length - 1``."""
    given = kwargs.get("position_ids")
    if given is not None:
        return given
    mask = kwargs.get("attention_mask")
    if mask is not None and mask.shape[1] == past + length:
        m = mask.long()
        pos = (m.cumsum(-1) - 1).masked_fill(m == 0, 0)  # (batch, past + length)
        return pos[:, -length:]
    return torch.arange(past, past + length, device=device).unsqueeze(0)  # (1, length)


def takes_positions(model: nn.Module) -> bool:
    return "position_ids" in forward_parameters(model)


def checkpointing_layers(model: nn.Module) -> list[GradientCheckpointingLayer]:
    """The decoder layers transformers checkpoints, when gradient checkpointing is enabled."""
    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def checkpointing_in_training(model: nn.Module) -> bool:
    """Whether this forward will run its layers under gradient checkpointing (replayed in the backward)."""
    if not (model.training and torch.is_grad_enabled()):
        return False
    return any(layer.gradient_checkpointing for layer in checkpointing_layers(model))


def reentrant_checkpointing(model: nn.Module) -> bool:
    """Whether the layers' checkpointing function is the reentrant variant (``use_reentrant=True``)."""
    for layer in checkpointing_layers(model):
        func = getattr(layer, "_gradient_checkpointing_func", None)
        if layer.gradient_checkpointing and getattr(func, "keywords", {}).get("use_reentrant") is True:
            return True
    return False
