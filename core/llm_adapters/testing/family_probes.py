"""Low-level probes of a model that :mod:`llm_adapters.testing.family_conformance` uses: linear shapes, the
KV cache's tensors, and forward hooks that capture or overwrite a module's output rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

#: rows of a module's output and the value written into them (a scalar or a ``(..., len(rows))`` tensor)
Edit = tuple[torch.Tensor, torch.Tensor | float]


def linear_out_in(module: nn.Module) -> tuple[int, int] | None:
    """``(out_features, in_features)`` of an ``nn.Linear`` or of a transformers ``Conv1D`` (whose weight is
    stored ``(in, out)``); None for any other module."""
    if isinstance(module, Conv1D):
        return int(module.weight.shape[1]), int(module.weight.shape[0])
    if isinstance(module, nn.Linear):
        return int(module.out_features), int(module.in_features)
    return None


def norm_size(module: nn.Module) -> int | None:
    """The feature count a norm normalises (its weight's length, else ``normalized_shape``), or None."""
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 1:
        return int(weight.shape[0])
    shape = getattr(module, "normalized_shape", None)
    return int(shape[-1]) if shape else None


def cache_layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(keys, values)`` of every layer of a KV cache: a transformers ``Cache`` with ``layers`` (5.x), one
    with ``key_cache`` / ``value_cache`` lists (4.x), or the legacy tuple of per-layer pairs."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    if hasattr(cache, "key_cache"):
        return list(zip(cache.key_cache, cache.value_cache, strict=True))
    return [(entry[0], entry[1]) for entry in cache]


def token_ids(model: nn.Module, batch: int = 2, length: int = 4, seed: int = 0) -> torch.Tensor:
    """Seeded random token ids inside the model's vocabulary (above the usual special ids 0-2)."""
    vocab = int(model.config.vocab_size)
    return torch.randint(3, min(vocab, 200), (batch, length), generator=torch.Generator().manual_seed(seed))


def by_head(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """``(batch, length, heads * head_dim)`` viewed as ``(batch, heads, length, head_dim)``."""
    b, t, _ = x.shape
    return x.reshape(b, t, -1, head_dim).transpose(1, 2)


@contextmanager
def hooked(
    model: nn.Module,
    *,
    outputs: Iterable[str] = (),
    inputs: Iterable[str] = (),
    edits: dict[str, list[Edit]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Within the block, record the output of each module in ``outputs`` and in ``edits`` (after the
    edits: the given rows of its output overwritten) under its path, and the first input of each module in
    ``inputs`` under ``"<path>:input"``. Outputs that are not tensors (a block's tuple) are recorded as
    they are. The hooks are removed on exit."""
    edits = edits or {}
    seen: dict[str, Any] = {}
    handles = []

    def on_output(path: str) -> Any:
        def hook(_module: nn.Module, _args: Any, out: Any) -> Any:
            if not isinstance(out, torch.Tensor):
                seen[path] = out
                return None
            if path in edits:
                out = out.clone()
                for rows, value in edits[path]:
                    out[..., rows] = value
            seen[path] = out.detach()
            return out

        return hook

    def on_input(path: str) -> Any:
        def hook(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            first = args[0] if args else next(iter(kwargs.values()))
            seen[f"{path}:input"] = first.detach()

        return hook

    try:
        for path in sorted(set(outputs) | set(edits)):
            handles.append(model.get_submodule(path).register_forward_hook(on_output(path)))
        for path in sorted(set(inputs)):
            handles.append(model.get_submodule(path).register_forward_pre_hook(on_input(path), with_kwargs=True))
        yield seen
    finally:
        for handle in handles:
            handle.remove()
