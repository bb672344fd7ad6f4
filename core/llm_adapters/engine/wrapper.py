"""The one wrapper that composes any number of adapter layers around one base module.

Composition order, for the active adapters in the order they were attached::

    x' = pre_n(...pre_1(x))                        # each pre layer returns the new input
    y  = base(x') + sum_i parallel_i(x', base(x'))  # each parallel layer returns a delta
    y' = post_n(...post_1(y))                      # each post layer returns the new output

A layer placed on a *part* of a fused projection (say the query rows of GPT-2's ``c_attn``) reads and
writes only that part's output features. Merged layers are folded into the base weight and skipped here.
Adapter layers keep their own parameter dtype (float32 when the base is half precision); inputs are cast to
it and results cast back to the activation dtype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import AdapterStateError
from ..layers import AdapterLayer


def is_conv1d(module: nn.Module) -> bool:
    """Whether ``module`` is transformers' ``Conv1D`` (GPT-2 style: weight stored ``(in, out)``), recognised
    without importing transformers."""
    return any(c.__name__ == "Conv1D" and c.__module__.startswith("transformers.") for c in type(module).__mro__)


def _slot(kind: str, part: str | None) -> str:
    return kind if part is None else f"{kind}_{part}"


class AdaptedModule(nn.Module):
    """Wraps ``base``; holds ``adapters[name][slot]`` layers (``slot`` is the kind, plus ``_<part>``)."""

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.adapters = nn.ModuleDict()
        self.transposed = is_conv1d(base)
        self._parts: dict[str, torch.Tensor] = {}  # part -> output indices
        self._slot_parts: dict[tuple[str, str], str | None] = {}
        self._active: list[str] = []
        self._merged: dict[tuple[str, str], torch.Tensor | None] = {}
        self._plan: dict[str, list[tuple[AdapterLayer, torch.Tensor | None]]] = {}
        self._replan()

    # ---- geometry -------------------------------------------------------------------------------
    @property
    def in_features(self) -> int | None:
        w = getattr(self.base, "weight", None)
        if self.transposed:
            return int(w.shape[0])
        return getattr(self.base, "in_features", None)

    @property
    def out_features(self) -> int | None:
        w = getattr(self.base, "weight", None)
        if self.transposed:
            return int(w.shape[1])
        return getattr(self.base, "out_features", None)

    def weight_out_in(self) -> torch.Tensor:
        """The live base weight in (out, in) layout."""
        w = self.base.weight
        return w.t() if self.transposed else w

    def part_weight(self, part: str | None = None) -> torch.Tensor:
        """The live base weight in (out, in) layout, only ``part``'s rows for a part of a fused projection."""
        w = self.weight_out_in()
        return w if part is None else w.index_select(0, self.part_indices(part, w.device))

    def part_bias(self, part: str | None = None) -> torch.Tensor | None:
        """The live base bias (``part``'s entries for a part of a fused projection), or None."""
        b = getattr(self.base, "bias", None)
        if not isinstance(b, torch.Tensor) or part is None:
            return b if isinstance(b, torch.Tensor) else None
        return b.index_select(0, self.part_indices(part, b.device))

    def set_part(self, part: str, indices: torch.Tensor) -> None:
        self._parts[part] = indices

    def part_indices(self, part: str | None, device: torch.device | None = None) -> torch.Tensor | None:
        if part is None:
            return None
        idx = self._parts[part]
        if device is not None and idx.device != device:
            idx = idx.to(device)
            self._parts[part] = idx
        return idx

    # ---- membership -----------------------------------------------------------------------------
    def add(self, name: str, kind: str, part: str | None, layer: AdapterLayer) -> str:
        slot = _slot(kind, part)
        if name not in self.adapters:
            self.adapters[name] = nn.ModuleDict()
        if slot in self.adapters[name]:
            raise AdapterStateError(f"adapter {name!r} already has a {slot!r} layer on this module")
        self.adapters[name][slot] = layer
        layer._llm_kind = kind  # type: ignore[attr-defined]
        self._slot_parts[(name, slot)] = part
        self._replan()
        return slot

    def remove(self, name: str) -> None:
        if name not in self.adapters:
            return
        for slot in list(self.adapters[name].keys()):
            if (name, slot) in self._merged:
                self.unmerge(name)
            self._slot_parts.pop((name, slot), None)
        del self.adapters[name]
        if name in self._active:
            self._active.remove(name)
        self._replan()

    def set_active(self, names: list[str]) -> None:
        self._active = [n for n in names if n in self.adapters]
        self._replan()

    @property
    def empty(self) -> bool:
        return len(self.adapters) == 0

    def _replan(self) -> None:
        plan: dict[str, list[tuple[AdapterLayer, torch.Tensor | None]]] = {
            "pre": [],
            "parallel": [],
            "post": [],
        }
        for name in self._active:
            for slot, layer in self.adapters[name].items():
                if (name, slot) in self._merged:
                    continue
                part = self._slot_parts[(name, slot)]
                plan[layer._llm_kind].append((layer, self._parts.get(part) if part else None))
        self._plan = plan

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        plan = self._plan
        for layer, _ in plan["pre"]:
            x = _call(layer, x, x.dtype)
        out = self.base(x, *args, **kwargs)
        if not plan["parallel"] and not plan["post"]:
            return out
        rest: tuple = ()
        if isinstance(out, tuple):  # e.g. a decoder block: adapt the hidden states only
            out, rest = out[0], out[1:]
        y = out
        for layer, idx in plan["parallel"]:
            idx = idx if idx is None or idx.device == y.device else idx.to(y.device)
            ldt = _dtype(layer, y.dtype)
            base_out = None
            if getattr(layer, "uses_base_output", False):
                base_out = (out if idx is None else out.index_select(-1, idx)).to(ldt)
            delta = layer(x.to(ldt), base_out).to(y.dtype)
            y = y + delta if idx is None else y.index_add(-1, idx, delta)
        for layer, idx in plan["post"]:
            if idx is None:
                y = _call(layer, y, y.dtype)
            else:
                idx = idx.to(y.device)
                y = y.index_copy(-1, idx, _call(layer, y.index_select(-1, idx), y.dtype))
        return (y, *rest) if rest else y

    # ---- merging --------------------------------------------------------------------------------
    @torch.no_grad()
    def _apply_delta(self, delta: torch.Tensor, part: str | None, sign: float) -> None:
        w = self.base.weight
        idx = self.part_indices(part, w.device)
        d = (sign * delta).to(w.dtype)  # (out_part, in)
        if self.transposed:  # Conv1D keeps (in, out)
            if idx is None:
                w.add_(d.t())
            else:
                w.index_add_(1, idx, d.t())
        elif idx is None:
            w.add_(d)
        else:
            w.index_add_(0, idx, d)

    def check_mergeable(self, name: str) -> None:
        for slot, layer in self.adapters[name].items():
            if not layer.mergeable or layer._llm_kind != "parallel":
                raise AdapterStateError(
                    f"adapter {name!r}: its {slot!r} layer ({type(layer).__name__}) cannot be merged; only "
                    "mergeable layers of kind 'parallel' fold into the base weight"
                )

    def merge(self, name: str) -> None:
        self.check_mergeable(name)
        for slot, layer in self.adapters[name].items():
            if (name, slot) in self._merged:
                continue  # merging twice is a no-op
            delta = layer.delta_weight().detach()
            self._apply_delta(delta, self._slot_parts[(name, slot)], +1.0)
            self._merged[(name, slot)] = delta if layer.delta_uses_base_weight else None
        self._replan()

    def unmerge(self, name: str) -> None:
        for slot, layer in self.adapters[name].items():
            if (name, slot) not in self._merged:
                continue
            cached = self._merged.pop((name, slot))
            delta = cached if cached is not None else layer.delta_weight().detach()
            self._apply_delta(delta, self._slot_parts[(name, slot)], -1.0)
        self._replan()

    def forget_merge(self, name: str) -> None:
        """Drop the merge bookkeeping (the delta stays in the base weight): used when unloading."""
        for key in [k for k in self._merged if k[0] == name]:
            del self._merged[key]
        self._replan()

    def extra_repr(self) -> str:
        return f"active={self._active}, merged={sorted({n for n, _ in self._merged})}"


def _dtype(layer: nn.Module, fallback: torch.dtype) -> torch.dtype:
    for p in layer.parameters():
        return p.dtype
    return fallback


def _call(layer: AdapterLayer, h: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    ldt = _dtype(layer, h.dtype)
    return layer(h.to(ldt)).to(out_dtype)
