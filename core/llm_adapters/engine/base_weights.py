"""Reading a base layer's whole weight, wherever it lives: sharded across processes (DeepSpeed ZeRO-3, a
``DTensor`` under FSDP2) or quantized (bitsandbytes 4-bit / 8-bit).

Adapter layers whose math reads the base weight (DoRA's magnitude and column norm; anything declaring
``delta_uses_base_weight``) get it through :meth:`llm_adapters.Site.weight`, which comes here: they always see
the full, float weight the layer computes with, never a shard or packed integers.

* :func:`full_weight` is the context manager: inside it, the weight is whole (gathered for the block under
  ZeRO-3, then released) and float (dequantized).
* :func:`read_weight` returns a tensor that stays valid after the block: the live parameter itself when it is
  whole and unquantized (no copy, so the common case costs nothing), else a gathered and/or dequantized copy.

Sharding schemes the kernel does not know register a gatherer with :func:`register_weight_gatherer`: a
callable ``(module, weight) -> context manager | None`` that returns a context manager making ``weight`` whole
inside it when it recognises the scheme (and None otherwise); the context manager may yield the whole tensor,
or None when it fills ``weight`` in place. Creating it must not start the gathering (it is also asked only
whether it recognises the weight). A weight that is empty on this process and that
no gatherer recognises is an error, never a silent zero norm.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from ..errors import AdapterStateError
from ..quantize import dequantize_weight, quantized_kind

#: extra gatherers, tried in order after ZeRO-3 and DTensor: (module, weight) -> context manager or None
WEIGHT_GATHERERS: list[Callable[[nn.Module, torch.Tensor], Any]] = []


def register_weight_gatherer(gatherer: Callable[[nn.Module, torch.Tensor], Any]) -> Callable[..., Any]:
    """Add a gatherer for a sharding scheme the kernel does not know (see the module docstring); returns it,
    so it can decorate the function."""
    if gatherer not in WEIGHT_GATHERERS:
        WEIGHT_GATHERERS.append(gatherer)
    return gatherer


def is_zero3(param: torch.Tensor) -> bool:
    """Whether ``param`` is partitioned by DeepSpeed ZeRO-3 (it then carries ``ds_numel`` / ``ds_shape`` and
    holds only this process's slice, often nothing)."""
    return hasattr(param, "ds_numel") or hasattr(param, "ds_id")


def _is_dtensor(param: torch.Tensor) -> bool:
    return any(c.__name__ == "DTensor" for c in type(param).__mro__)


def is_sharded(param: torch.Tensor | None) -> bool:
    """Whether ``param`` is split across processes by a scheme the kernel knows (ZeRO-3, ``DTensor``)."""
    return isinstance(param, torch.Tensor) and (is_zero3(param) or _is_dtensor(param))


def zero3_gathered(params: list[torch.Tensor]) -> Any:
    """DeepSpeed's ``zero.GatheredParameters`` over ``params``, read-only (``modifier_rank=None``)."""
    try:
        import deepspeed
    except ImportError:
        raise AdapterStateError(
            "a base weight is partitioned by DeepSpeed ZeRO-3 (it carries ds_numel), but deepspeed cannot be "
            "imported to gather it; install deepspeed in this environment"
        ) from None
    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def weight_shape(module: nn.Module) -> tuple[int, ...] | None:
    """The shape of ``module``'s whole weight as stored (None without a weight): a ZeRO-3 partition reports
    its ``ds_shape``, a 4-bit weight the shape it was quantized from (bitsandbytes keeps it packed)."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor):
        return None
    if is_zero3(w) and getattr(w, "ds_shape", None) is not None:
        return tuple(w.ds_shape)
    state = getattr(w, "quant_state", None)
    if quantized_kind(module) == "4bit" and state is not None:
        return tuple(state.shape)
    return tuple(w.shape)


def _expected_numel(module: nn.Module) -> int | None:
    d_in, d_out = getattr(module, "in_features", None), getattr(module, "out_features", None)
    if isinstance(d_in, int) and isinstance(d_out, int):
        return d_in * d_out
    return None


@contextlib.contextmanager
def _gathered(module: nn.Module, weight: torch.Tensor) -> Iterator[torch.Tensor]:
    """``weight`` made whole for the block (itself when it is not sharded)."""
    if is_zero3(weight):
        with zero3_gathered([weight]):
            yield weight
        return
    if _is_dtensor(weight):
        yield weight.full_tensor()
        return
    for gatherer in WEIGHT_GATHERERS:
        ctx = gatherer(module, weight)
        if ctx is not None:
            with ctx as whole:
                yield weight if whole is None else whole
            return
    expected = _expected_numel(module)
    if weight.numel() == 0 and expected:
        raise AdapterStateError(
            f"the weight of this {type(module).__name__} is empty on this process ({expected} values expected): it "
            "is sharded by a scheme llm-adapters does not know; gather it first, or register a gatherer with "
            "llm_adapters.engine.base_weights.register_weight_gatherer"
        )
    yield weight


@contextlib.contextmanager
def full_weight(module: nn.Module) -> Iterator[torch.Tensor]:
    """The whole weight of ``module`` in its stored layout, inside the block: gathered when it is sharded
    (DeepSpeed ZeRO-3, DTensor, a registered gatherer) and dequantized to float32 when bitsandbytes quantized
    it. An unsharded, unquantized weight is the live parameter itself; anything else is valid only inside
    the block unless it is a copy."""
    weight = module.weight
    with _gathered(module, weight) as whole:
        if quantized_kind(module) is not None:
            yield dequantize_weight(module)
        else:
            yield whole


def needs_reading(module: nn.Module) -> bool:
    """Whether ``module.weight`` must be gathered or dequantized before its values can be used."""
    w = getattr(module, "weight", None)
    if w is None:
        return False
    if quantized_kind(module) is not None or is_zero3(w) or _is_dtensor(w):
        return True
    if w.numel() == 0 and _expected_numel(module):  # sharded by some scheme: gather it, or say why not
        return True
    return any(g(module, w) is not None for g in WEIGHT_GATHERERS)


def read_weight(module: nn.Module) -> torch.Tensor:
    """``module``'s whole float weight in its stored layout, valid after the call: the live parameter when it
    is whole and unquantized, else a gathered / dequantized copy (outside the autograd graph)."""
    if not needs_reading(module):
        return module.weight
    with full_weight(module) as whole:
        if whole is module.weight:  # the gathered live parameter: copy it before it is released again
            return whole.detach().clone()
        return whole


def merge_problem(module: nn.Module) -> str | None:
    """Why adapters cannot be merged into ``module`` (its weight is quantized by bitsandbytes, or sharded across
    processes), or None."""
    kind = quantized_kind(module)
    if kind is None:
        if is_sharded(getattr(module, "weight", None)):
            return (
                "the base weight is sharded across processes (DeepSpeed ZeRO-3 / FSDP), so this process cannot write "
                "the merged weight; merge after training, on a whole model (llm-adapters export loads one)"
            )
        return None
    return (
        f"the base weight is quantized ({kind}, {type(module).__name__}), and folding an adapter into it would "
        "mean quantizing the merged weight again, which loses most of the adapter's change. Keep the adapter "
        "unmerged on the quantized model, or load the base in full precision and merge there (llm-adapters "
        "export does that: the QLoRA convention)"
    )
