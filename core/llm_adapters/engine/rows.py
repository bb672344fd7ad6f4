"""Running adapter layers on some rows of a batch (per-row routing), and the dtype handling every forward of
the wrapper shares: layers keep their own parameter dtype, inputs are cast to it and results cast back."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import AdapterLayer


def forward_by_rows(wrapper: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    """``wrapper``'s forward with each adapter's layers applied to its own rows only (dimension 0 is the batch;
    ``wrapper._routes`` maps adapter names to row indices, see :mod:`.routing`)."""
    assert wrapper._routes is not None
    routed: dict[str, list[tuple[AdapterLayer, torch.Tensor | None, torch.Tensor]]] = {
        "pre": [],
        "parallel": [],
        "post": [],
    }
    for name, rows in wrapper._routes.items():
        if name in wrapper.adapters:
            rows = rows.to(x.device)
            for slot, layer in wrapper.adapters[name].items():
                part = wrapper._slot_parts[(name, slot)]
                idx = None if part is None else wrapper.part_indices(part, x.device)
                routed[wrapper._kinds[(name, slot)]].append((layer, idx, rows))
    for layer, _, rows in routed["pre"]:
        x = x.index_copy(0, rows, _call(layer, x.index_select(0, rows), x.dtype))
    out = wrapper.base(x, *args, **kwargs)
    if not routed["parallel"] and not routed["post"]:
        return out
    rest: tuple = ()
    if isinstance(out, tuple):
        out, rest = out[0], out[1:]
    y = out
    for layer, idx, rows in routed["parallel"]:
        ldt = _dtype(layer, y.dtype)
        base_out = None
        if layer.uses_base_output:
            sub = out.index_select(0, rows)
            base_out = (sub if idx is None else sub.index_select(-1, idx)).to(ldt)
        delta = layer(x.index_select(0, rows).to(ldt), base_out).to(y.dtype)
        if idx is None:
            y = y.index_add(0, rows, delta)
        else:
            y = y.index_copy(0, rows, y.index_select(0, rows).index_add(-1, idx, delta))
    for layer, idx, rows in routed["post"]:
        sub = y.index_select(0, rows)
        if idx is None:
            sub = _call(layer, sub, y.dtype)
        else:
            sub = sub.index_copy(-1, idx, _call(layer, sub.index_select(-1, idx), y.dtype))
        y = y.index_copy(0, rows, sub)
    return (y, *rest) if rest else y


def _dtype(layer: nn.Module, fallback: torch.dtype) -> torch.dtype:
    for p in layer.parameters():
        return p.dtype
    return fallback


def _call(layer: AdapterLayer, h: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    ldt = _dtype(layer, h.dtype)
    return layer(h.to(ldt)).to(out_dtype)
