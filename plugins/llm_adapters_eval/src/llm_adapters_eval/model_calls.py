"""How :mod:`llm_adapters_eval.decoding` calls the model: the KV cache of a batch (a fresh ``DynamicCache`` laid out
for the model, the cache a forward returned, dropping finished rows with ``batch_select_indices``, left-padding)
and the per-row adapter names of the kernel's routing."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from llm_adapters.errors import AdapterStateError


@contextmanager
def evaluating(model: Any) -> Iterator[Any]:
    """The model in eval mode within the block (dropout off) and no autograd, its previous mode restored
    afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        model.train(was_training)


#: the adapter name that routes a row to the base model (the kernel's ``adapter_names`` convention)
BASE = "__base__"


def forward_parameters(model: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(type(model).forward).parameters)
    except (TypeError, ValueError):
        return frozenset()


def new_cache(model: Any) -> Any:
    """An empty ``DynamicCache`` laid out for the model (sliding-window layers where its config has them)."""
    from transformers import DynamicCache

    config = getattr(model, "config", None)
    if callable(getattr(config, "get_text_config", None)):
        return DynamicCache(config=config)
    return DynamicCache()


def returned_cache(output: Any, given: Any) -> Any:
    for key in ("cache", "past_key_values"):
        value = getattr(output, key, None)
        if value is not None:
            return value
    return given


def select_rows(cache: Any, index: torch.Tensor) -> None:
    """Keep only the batch rows ``index`` of every cache layer."""
    if callable(getattr(cache, "batch_select_indices", None)):
        cache.batch_select_indices(index)
        return
    raise TypeError(f"decoding: the model returned a cache of type {type(cache).__name__}, which cannot drop rows")


def pad_left(tensor: torch.Tensor, count: int, *, dim: int) -> torch.Tensor:
    if count == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = count
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def route_names(model: Any, rows: Sequence[Any]) -> list[str] | None:
    """The per-row adapter names when any row names an adapter (``__base__`` for the others), else None. The
    model's routing checks the names against what is attached; a model with no adapter at all has no routing,
    so a name there is refused here."""
    if not any(r.adapter is not None for r in rows):
        return None
    from llm_adapters.engine import has_adapters

    if not has_adapters(model):
        named = sorted({r.adapter for r in rows if r.adapter is not None and r.adapter != BASE})
        if not named:
            return None  # only "__base__" on a model without adapters: nothing to route
        raise AdapterStateError(
            f"decoding: no adapter named {', '.join(map(repr, named))} (the model has no adapters attached); "
            "attach or load it first"
        )
    return [r.adapter or BASE for r in rows]
