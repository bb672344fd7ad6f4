"""The one wrapper that composes any number of adapter layers around one base module.

Composition order, for the active adapters in the order they were attached::

    x' = pre_n(...pre_1(x))                        # each pre layer returns the new input
    y  = base(x') + sum_i parallel_i(x', base(x'))  # each parallel layer returns a delta
    y' = post_n(...post_1(y))                      # each post layer returns the new output

A layer placed on a *part* of a fused projection (say the query rows of GPT-2's ``c_attn``) reads and
writes only that part's output features. Merged layers are folded into the base weight and skipped here.

Merging (see :meth:`AdaptedModule.merge`) folds every merged layer of the module into the weight and bias
at once, from a copy of the original base tensors kept while anything is merged, in the composition order::

    W' = Q_n ... Q_1 (W + sum_i dW_i) P_n ... P_1          b' = Q_n(...(Q_1 (b + sum_i db_i) + t_1)...) + t_n

with ``dW_i, db_i`` the parallel layers' ``delta_weight()`` / ``delta_bias()``, ``P_k`` the pre layers'
``input_map()`` and ``Q_k, t_k`` the post layers' ``output_map()`` / ``output_shift()`` (a map is a
per-channel vector or a square matrix). Unmerging the last merged layer copies the original back, so every
merge / unmerge / detach cycle returns the base tensors bit for bit, in any dtype. The copy costs the size of
the merged modules' weights and biases, and is freed when nothing is merged (or when the merge is unloaded).
Adapter layers keep their own parameter dtype (float32 when the base is half precision); inputs are cast to
it and results cast back to the activation dtype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import AdapterStateError
from ..layers import AdapterLayer
from .base_weights import merge_problem, read_weight, weight_shape
from .rows import _call, _dtype, forward_by_rows


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
        self._kinds: dict[tuple[str, str], str] = {}  # (name, slot) -> pre / parallel / post
        self._active: list[str] = []
        self._merged: dict[tuple[str, str], None] = {}  # merged (name, slot) keys, in the order merged
        self._saved: tuple[torch.Tensor, torch.Tensor | None] | None = None  # original weight and bias
        self._routes: dict[str, torch.Tensor] | None = None  # per-row adapters of the current call
        self._plan: dict[str, list[tuple[AdapterLayer, torch.Tensor | None]]] = {}
        self._replan()

    # ---- geometry -------------------------------------------------------------------------------
    @property
    def in_features(self) -> int | None:
        if self.transposed:
            return int(weight_shape(self.base)[0])  # the whole weight's, also when it is sharded
        return getattr(self.base, "in_features", None)

    @property
    def out_features(self) -> int | None:
        if self.transposed:
            return int(weight_shape(self.base)[1])
        return getattr(self.base, "out_features", None)

    def weight_out_in(self) -> torch.Tensor:
        """The base weight in (out, in) layout: the live parameter, or a whole float copy when it is sharded
        (ZeRO-3, DTensor) or quantized (bitsandbytes), see :mod:`.base_weights`."""
        w = read_weight(self.base)
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
        self._kinds[(name, slot)] = kind
        self._slot_parts[(name, slot)] = part
        self._replan()
        return slot

    def remove(self, name: str) -> None:
        if name not in self.adapters:
            return
        if any(key[0] == name for key in self._merged):
            self.unmerge(name)
        for slot in list(self.adapters[name].keys()):
            self._slot_parts.pop((name, slot), None)
            self._kinds.pop((name, slot), None)
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
                plan[self._kinds[(name, slot)]].append((layer, self._parts.get(part) if part else None))
        self._plan = plan

    # ---- forward --------------------------------------------------------------------------------
    def set_routes(self, routes: dict[str, torch.Tensor] | None) -> None:
        """Run each adapter on its own rows (``{name: row indices}``) until set to None (see routing.py)."""
        self._routes = routes

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self._routes is not None:
            return forward_by_rows(self, x, *args, **kwargs)
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
            if layer.uses_base_output:
                base_out = (out if idx is None else out.index_select(-1, idx)).to(ldt)
            if idx is None and ldt == y.dtype:
                y = layer.add_delta(y, x.to(ldt), base_out)  # the addition fused where the layer can
            else:
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
    def _slots(self, names: list[str] | set[str]) -> list[tuple[str, str]]:
        """The ``(name, slot)`` keys of ``names`` on this module, in attachment order."""
        return [(n, slot) for n in self.adapters if n in names for slot in self.adapters[n]]

    def check_mergeable(self, names: list[str]) -> None:
        """Raise (changing nothing) unless merging ``names`` here is exact: every layer of theirs declares
        ``mergeable``, and the module's composition stays exact (:meth:`composition_problem`); the base
        weight is neither quantized nor sharded (:func:`.base_weights.merge_problem`)."""
        problem = merge_problem(self.base)
        if problem:
            raise AdapterStateError(f"cannot merge {', '.join(sorted(set(names)))}: {problem}")
        for name, slot in self._slots(names):
            layer = self.adapters[name][slot]
            if not layer.mergeable:
                raise AdapterStateError(
                    f"adapter {name!r}: its {slot!r} layer ({type(layer).__name__}) cannot be merged: it does not "
                    "declare mergeable = True (its function is not a linear change of the base weight)"
                )
        problem = self.composition_problem(set(self._merged) | set(self._slots(names)), self._active)
        if problem:
            raise AdapterStateError(f"cannot merge {', '.join(sorted(set(names)))}: {problem}")

    def composition_problem(self, merged: set[tuple[str, str]], active: list[str]) -> str | None:
        """Why ``merged`` layers folded into the weight, next to the unmerged ones of ``active``, would not
        compute what the unmerged composition computes (None when it would):

        * a merged ``pre`` or ``post`` layer rescales the weight, which an unmerged active layer on this module
          would not see in the same order: every active layer must then be merged with it;
        * an unmerged active layer that reads the base weight (``delta_uses_base_weight``) would read the
          merged one."""
        left = [key for key in self._slots(set(active)) if key not in merged]
        if not left:
            return None
        rescales = sorted({n for n, slot in merged if self._kinds[(n, slot)] in ("pre", "post")})
        if rescales:
            return (
                f"the merged adapter {rescales[0]!r} rescales the weight of this module, so every active adapter "
                f"on it must be merged with it (unmerged: {', '.join(sorted({n for n, _ in left}))}); merge, "
                "unmerge or switch them together"
            )
        readers = [key for key in left if self.adapters[key[0]][key[1]].delta_uses_base_weight]
        if readers and merged:
            return (
                f"the active, unmerged adapter {readers[0][0]!r} reads the base weight in its forward, which "
                "merging changes; merge it too, or deactivate it first"
            )
        return None

    def slots_of(self, names: list[str] | set[str]) -> list[tuple[str, str]]:
        """The ``(name, slot)`` keys of ``names`` on this module (public form of the look-up)."""
        return self._slots(names)

    @property
    def merged_keys(self) -> set[tuple[str, str]]:
        return set(self._merged)

    def _base_tensors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        b = getattr(self.base, "bias", None)
        return self.base.weight, (b if isinstance(b, torch.Tensor) else None)

    @torch.no_grad()
    def _fold(self, keys: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The base weight ``(out, in)`` and bias with the layers ``keys`` folded in (float32 arithmetic, the
        base's dtype out). The live base tensors must hold the originals (delta_weight may read them)."""
        w_live, b_live = self._base_tensors()
        w = (w_live.t() if self.transposed else w_live).float().clone()  # (out, in)
        b = None if b_live is None else b_live.float().clone()
        order = {"parallel": 0, "pre": 1, "post": 2}
        ranked = sorted(keys, key=lambda k: order[self._kinds[k]])  # stable: attachment order within a kind
        pres = [k for k in ranked if self._kinds[k] == "pre"]
        for key in ranked:
            layer, kind = self.adapters[key[0]][key[1]], self._kinds[key]
            idx = self.part_indices(self._slot_parts[key], w.device)
            where = f"adapter {key[0]!r}, {key[1]!r} layer ({type(layer).__name__})"
            if kind == "parallel":
                dw = layer.delta_weight().detach().float()  # (out_part, in)
                w = w + dw if idx is None else w.index_add(0, idx, dw)
                db = layer.delta_bias()
                if db is not None:
                    if b is None:
                        raise AdapterStateError(f"{where}: cannot merge a bias change into a module without a bias")
                    db = db.detach().float()
                    b = b + db if idx is None else b.index_add(0, idx, db)
            elif kind == "post":
                q = layer.output_map().detach().float()  # (out_part,) per channel, or (out_part, out_part)
                t = layer.output_shift()
                rows = w if idx is None else w.index_select(0, idx)
                rows = q[:, None] * rows if q.dim() == 1 else q @ rows
                w = rows if idx is None else w.index_copy(0, idx, rows)
                if b is not None:
                    bb = b if idx is None else b.index_select(0, idx)
                    bb = q * bb if q.dim() == 1 else q @ bb
                    if t is not None:
                        bb = bb + t.detach().float()
                    b = bb if idx is None else b.index_copy(0, idx, bb)
                elif t is not None:
                    raise AdapterStateError(f"{where}: cannot merge an output shift into a module without a bias")
        for key in reversed(pres):  # x' = P_n ... P_1 x, so W' = W P_n ... P_1
            p = self.adapters[key[0]][key[1]].input_map().detach().float()  # (in,) or (in, in)
            w = w * p[None, :] if p.dim() == 1 else w @ p
        return w, b

    @torch.no_grad()
    def _write(self, w: torch.Tensor, b: torch.Tensor | None) -> None:
        w_live, b_live = self._base_tensors()
        w_live.copy_(w.t() if self.transposed else w)
        if b_live is not None and b is not None:
            b_live.copy_(b)

    @torch.no_grad()
    def merge(self, names: list[str], *, safe: bool = False) -> None:
        """Fold the layers of ``names`` into the base weight and bias (together with those already merged).
        With ``safe=True`` the result is checked to be finite before anything changes. On any failure the
        base tensors are left as they were."""
        keys = [k for k in self._slots(names) if k not in self._merged]
        if not keys:
            return  # merging twice is a no-op
        self.check_mergeable(names)
        w_live, b_live = self._base_tensors()
        if self._saved is None:
            saved = (w_live.detach().clone(), None if b_live is None else b_live.detach().clone())
        else:
            saved = self._saved
            self._write(saved[0].t() if self.transposed else saved[0], saved[1])  # the layers read the original
        try:
            w, b = self._fold([*self._merged, *keys])
            w, b = w.to(w_live.dtype), None if b is None or b_live is None else b.to(b_live.dtype)  # as stored
            if safe and not (torch.isfinite(w).all() and (b is None or torch.isfinite(b).all())):
                raise AdapterStateError(
                    f"merging {', '.join(sorted(set(names)))} gives non-finite weights in this module; nothing "
                    "was merged (check the adapter's weights for inf / nan)"
                )
        except BaseException:
            if self._saved is not None:  # put back the weights with what was merged before
                self._write(*self._fold(list(self._merged)))
            raise
        self._saved = saved
        self._write(w, b)
        for key in keys:
            self._merged[key] = None
        self._replan()

    @torch.no_grad()
    def unmerge(self, name: str) -> None:
        """Take ``name``'s layers out of the base tensors. When nothing stays merged the original tensors are
        copied back, bit for bit."""
        keys = [k for k in self._merged if k[0] == name]
        if not keys or self._saved is None:
            return
        for key in keys:
            del self._merged[key]
        w0, b0 = self._saved
        w_live, b_live = self._base_tensors()
        w_live.copy_(w0)
        if b_live is not None and b0 is not None:
            b_live.copy_(b0)
        if self._merged:
            self._write(*self._fold(list(self._merged)))
        else:
            self._saved = None
        self._replan()

    def forget_merge(self, name: str) -> None:
        """Drop the merge bookkeeping of ``name`` (its change stays in the base tensors): used when unloading."""
        for key in [k for k in self._merged if k[0] == name]:
            del self._merged[key]
        if not self._merged:
            self._saved = None
        self._replan()

    def extra_repr(self) -> str:
        return f"active={self._active}, merged={sorted({n for n, _ in self._merged})}"

    def kind_of(self, name: str, slot: str) -> str:
        """The kind (pre, parallel, post) of adapter ``name``'s layer in ``slot``."""
        return self._kinds[(name, slot)]
