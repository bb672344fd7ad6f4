"""Weighted combinations of attached LoRA adapters: the math behind ``llm_adapters.combine`` for type ``lora``.

Every input ``i`` has weight ``w_i``, scale ``s_i`` (alpha / r, or alpha / sqrt(r) with rsLoRA) and, on each
module it covers, the change ``delta_i = s_i B_i A_i``. A module an input does not cover counts as
``delta_i = 0`` there. The new adapter has ``alpha = r`` and no rsLoRA, so its own scale is exactly 1, and the
first input's dropout. Methods:

* ``cat``: ranks concatenated, ``r = sum r_i``: ``A = [A_1; A_2; ...]`` (rows stacked),
  ``B = [w_1 s_1 B_1, w_2 s_2 B_2, ...]`` (columns), so ``B A = sum_i w_i delta_i`` exactly. Works on the
  union of the inputs' modules.
* ``linear``: HF PEFT's ``linear``: every input has one rank ``r`` and the same modules;
  ``A = sum_i c_i A_i`` and ``B = sum_i c_i B_i`` with ``c_i = sqrt(w_i s_i)`` (PEFT applies the square root of
  weight times scale to each factor). ``B A`` is then *not* the weighted sum of the deltas: it carries the
  cross terms ``c_i c_j B_i A_j``. Negative ``w_i`` have no real square root and are refused.
* ``svd``: ``M = sum_i w_i delta_i`` per module, re-factored to ``rank`` (default: the largest input rank) by
  truncated SVD: ``M ~ U_k S_k V_k^T``, ``B = U_k S_k``, ``A = V_k^T`` (PEFT's ``svd``): the best rank-k
  approximation of M. Where a module's M has fewer than ``rank`` singular values, the extra rows and columns
  are zero.
* ``ties`` (Yadav et al., 2023): each ``w_i delta_i`` is trimmed to its ``int(density * numel)`` entries of
  largest magnitude; the sign of each entry is elected as the sign of the sum of the trimmed values (0 counts
  as +); the result is the mean, per entry, of the trimmed values that carry the elected sign (0 where none
  does). Then re-factored by SVD to ``rank``.
* ``dare_linear`` / ``dare_ties`` (Yu et al., 2023): each ``delta_i`` keeps each entry with probability
  ``density`` and is divided by ``density``; then ``sum_i w_i delta_i`` (``dare_linear``) or TIES's sign
  election and disjoint mean on ``w_i delta_i`` (``dare_ties``, without trimming). Then re-factored by SVD.
  The draws are reproducible: one ``torch.Generator`` seeded with ``seed``; modules visited in sorted
  ``(module path, part)`` order, inputs in the given order (also inputs absent from that module); the keep
  mask of one input on one module is ``torch.rand(delta.shape, generator=g, dtype=torch.float64) < density``.

The last three are what PEFT calls ``ties_svd``, ``dare_linear_svd`` and ``dare_ties_svd`` (operating on the
full deltas); PEFT's plain ``ties`` / ``dare_*`` instead apply these steps to the A and B factors separately.
All arithmetic runs in float64 and the results are cast to the new layers' dtype.

DoRA inputs are refused: a DoRA layer's change ``m (W + s B A) / ||W + s B A||_c - W`` is not low-rank and
depends on the base weight through the row norms, so no combination of them is a LoRA (or DoRA) adapter.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from llm_adapters.engine import attach, detach, model_family
from llm_adapters.engine.state import _state, _wrapper
from llm_adapters.errors import AdapterStateError

from .config import LoRAConfig
from .layers import LoRALayer

if TYPE_CHECKING:
    from torch import nn

METHODS = ("cat", "linear", "svd", "ties", "dare_linear", "dare_ties")
DENSITY_METHODS = ("ties", "dare_linear", "dare_ties")
RANK_METHODS = ("svd", *DENSITY_METHODS)

Key = tuple[str, "str | None"]  # (module path, part of a fused projection or None)


def check_options(method: str, density: float | None, rank: int | None) -> None:
    """Refuse an unknown method, and options that the method does not take or that are out of range."""
    if method not in METHODS:
        raise AdapterStateError(
            f"unknown combination method {method!r} for adapter type 'lora'; expected one of: {', '.join(METHODS)}"
        )
    if density is None and method in DENSITY_METHODS:
        raise AdapterStateError(f"method {method!r} needs density, the fraction of entries kept, in (0, 1]")
    if density is not None:
        if method not in DENSITY_METHODS:
            raise AdapterStateError(f"density applies only to methods {', '.join(DENSITY_METHODS)}, not to {method!r}")
        if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
            raise AdapterStateError(f"density must be in (0, 1], got {density!r}")
    if rank is not None:
        if method not in RANK_METHODS:
            raise AdapterStateError(f"rank applies only to methods {', '.join(RANK_METHODS)}, not to {method!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise AdapterStateError(f"rank must be a positive integer, got {rank!r}")


def _layers(model: nn.Module, name: str) -> tuple[dict[Key, LoRALayer], dict[Key, str | None]]:
    """The layers of adapter ``name`` by (module path, part), and the role each site was placed by."""
    rec = _state(model).records[name]
    layers: dict[Key, LoRALayer] = {}
    roles: dict[Key, str | None] = {}
    for site in rec.sites:
        key = (site.module_path, site.part)
        layers[key] = _wrapper(model, site.module_path, create=False).adapters[name][site.slot]  # type: ignore[assignment]
        roles[key] = site.role
    return layers, roles


def combine(
    model: nn.Module,
    adapters: list[str],
    weights: list[float],
    name: str,
    *,
    method: str = "cat",
    density: float | None = None,
    rank: int | None = None,
    seed: int = 0,
) -> None:
    """Attach adapter ``name``, the combination of the LoRA ``adapters`` (see the module docstring)."""
    check_options(method, density, rank)
    state = _state(model)
    configs: list[LoRAConfig] = [state.records[n].config for n in adapters]  # type: ignore[misc]
    dora = [n for n, c in zip(adapters, configs, strict=True) if c.use_dora]
    if dora:
        raise AdapterStateError(
            f"cannot combine DoRA adapter(s) {', '.join(map(repr, dora))}: a DoRA layer changes the weight by "
            "m (W + s B A) / ||W + s B A||_c - W, which depends on the base weight and is not low-rank, so no "
            "weighted combination of such changes is a LoRA or DoRA adapter"
        )
    found = [_layers(model, n) for n in adapters]
    per_adapter = [layers for layers, _ in found]
    roles: dict[Key, str | None] = {}
    for _, r in found:
        for key, role in r.items():
            roles.setdefault(key, role)
    keys = list(roles)
    ranks = [c.r for c in configs]
    if method == "linear":
        _check_linear(adapters, configs, per_adapter, weights)
        new_r = ranks[0]
    elif method == "cat":
        new_r = sum(ranks)
    else:
        new_r = rank if rank is not None else max(ranks)
    targets = _targets(model, configs, keys, roles)
    factors = _factors(method, keys, per_adapter, configs, weights, new_r, density, seed)
    new_config = LoRAConfig(r=new_r, alpha=float(new_r), dropout=configs[0].dropout, target_modules=targets)
    attach(model, new_config, name=name)
    try:
        new_layers, _ = _layers(model, name)
        if set(new_layers) != set(keys):
            raise AdapterStateError(
                f"combine: the combined adapter landed on other modules than its inputs ({sorted(new_layers)} vs "
                f"{sorted(keys)})"
            )
        with torch.no_grad():
            for key, (a, b) in factors.items():
                layer = new_layers[key]
                layer.lora_A.copy_(a.to(device=layer.lora_A.device, dtype=layer.lora_A.dtype))
                layer.lora_B.copy_(b.to(device=layer.lora_B.device, dtype=layer.lora_B.dtype))
    except BaseException:
        detach(model, name)
        raise


def _check_linear(
    adapters: list[str], configs: list[LoRAConfig], per_adapter: list[dict[Key, LoRALayer]], weights: list[float]
) -> None:
    ranks = [c.r for c in configs]
    if len(set(ranks)) > 1:
        listed = ", ".join(f"r={r} ({n!r})" for n, r in zip(adapters, ranks, strict=True))
        raise AdapterStateError(
            f"method 'linear' needs adapters of one rank, got {listed}; use 'cat' or 'svd' to combine other ranks"
        )
    first = set(per_adapter[0])
    for n, layers in zip(adapters[1:], per_adapter[1:], strict=True):
        if set(layers) != first:
            diff = sorted((first ^ set(layers)), key=_sort_key)
            shown = ", ".join(p if part is None else f"{p} (part {part})" for p, part in diff[:3])
            raise AdapterStateError(
                f"method 'linear' needs adapters on the same modules: {adapters[0]!r} and {n!r} differ on {shown}"
                f"{' ...' if len(diff) > 3 else ''}; use 'cat' or 'svd' to combine adapters on different modules"
            )
    negative = [(n, w) for n, w in zip(adapters, weights, strict=True) if w < 0]
    if negative:
        n, w = negative[0]
        raise AdapterStateError(
            f"method 'linear' scales A and B each by sqrt(weight * scale), which a negative weight does not have "
            f"({n!r}: {w:g}); use 'cat' or 'svd' for negative weights"
        )


def _sort_key(key: Key) -> tuple[str, str]:
    return key[0], key[1] or ""


def _targets(
    model: nn.Module, configs: list[LoRAConfig], keys: list[Key], roles: dict[Key, str | None]
) -> list[str] | str:
    """Targets that resolve to exactly the sites ``keys``: the inputs' own targets when they all share them,
    else full module paths (whole modules) and roles (parts of fused projections, which only roles reach)."""
    first = configs[0].targets()
    if all(c.targets() == first for c in configs[1:]):
        return list(first) if isinstance(first, list) else first
    out: list[str] = []
    part_roles: dict[str, set[str]] = {}
    for path, part in keys:
        if part is None:
            out.append(path)
            continue
        role = roles[(path, part)]
        if role is None:
            raise AdapterStateError(f"combine: part {part!r} of {path} was placed by no role; cannot target it")
        part_roles.setdefault(role, set()).add(path)
    family = model_family(model)
    for role, paths in part_roles.items():
        assert family is not None  # parts come only from a family's roles
        every = {p for p, _ in family.role_sites(model, role)}
        if paths != every:
            raise AdapterStateError(
                f"combine: the adapters place {role!r} on {len(paths)} of the {len(every)} fused projections; a "
                f"combined adapter can target the parts of fused projections only by role, on every block"
            )
        out.append(role)
    return out


def _factors(
    method: str,
    keys: list[Key],
    per_adapter: list[dict[Key, LoRALayer]],
    configs: list[LoRAConfig],
    weights: list[float],
    new_r: int,
    density: float | None,
    seed: int,
) -> dict[Key, tuple[torch.Tensor, torch.Tensor]]:
    """The new (A, B) per module, in float64."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: dict[Key, tuple[torch.Tensor, torch.Tensor]] = {}
    for key in sorted(keys, key=_sort_key):
        present = next(layers[key] for layers in per_adapter if key in layers)
        d_out, d_in = present.lora_B.shape[0], present.lora_A.shape[1]
        f64 = dict(dtype=torch.float64, device=present.lora_A.device)
        if method in ("cat", "linear"):
            a_parts, b_parts = [], []
            for layers, cfg, w in zip(per_adapter, configs, weights, strict=True):
                layer = layers.get(key)
                if layer is None:  # only 'cat' gets here with a missing module: a zero block
                    a_parts.append(torch.zeros(cfg.r, d_in, **f64))
                    b_parts.append(torch.zeros(d_out, cfg.r, **f64))
                    continue
                a, b = layer.lora_A.detach().to(**f64), layer.lora_B.detach().to(**f64)
                if method == "cat":
                    a_parts.append(a)
                    b_parts.append(b * (w * layer.scale))
                else:
                    c = math.sqrt(w * layer.scale)
                    a_parts.append(a * c)
                    b_parts.append(b * c)
            if method == "cat":
                out[key] = torch.cat(a_parts, dim=0), torch.cat(b_parts, dim=1)
            else:
                out[key] = torch.stack(a_parts).sum(0), torch.stack(b_parts).sum(0)
            continue
        deltas = []
        for layers in per_adapter:
            layer = layers.get(key)
            if layer is None:
                deltas.append(torch.zeros(d_out, d_in, **f64))
            else:
                deltas.append(layer.lora_B.detach().to(**f64) @ layer.lora_A.detach().to(**f64) * layer.scale)
        out[key] = refactor(merge_deltas(method, deltas, weights, density, gen), new_r)
    return out


def merge_deltas(
    method: str, deltas: list[torch.Tensor], weights: list[float], density: float | None, gen: torch.Generator
) -> torch.Tensor:
    """One module's combined change from the inputs' changes ``deltas`` (each (d_out, d_in))."""
    if method == "svd":
        return sum((w * d for w, d in zip(weights, deltas, strict=True)), torch.zeros_like(deltas[0]))
    assert density is not None
    if method.startswith("dare_"):
        kept = []
        for d in deltas:
            keep = torch.rand(d.shape, generator=gen, dtype=torch.float64) < density
            kept.append(d * keep.to(d.device) / density)
        deltas = kept
    weighted = torch.stack([w * d for w, d in zip(weights, deltas, strict=True)])  # (n, d_out, d_in)
    if method == "dare_linear":
        return weighted.sum(0)
    if method == "ties":
        weighted = torch.stack([_trim(t, density) for t in weighted])
    return _disjoint_mean(weighted)


def _trim(t: torch.Tensor, density: float) -> torch.Tensor:
    """``t`` with all but its ``int(density * numel)`` largest-magnitude entries set to zero."""
    k = int(density * t.numel())
    flat = t.reshape(-1)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        keep[flat.abs().topk(k).indices] = True
    return (flat * keep).reshape(t.shape)


def _disjoint_mean(stacked: torch.Tensor) -> torch.Tensor:
    """TIES's merge of (n, ...) task tensors: elect each entry's sign by the sign of the sum (0 counts as +),
    then average the entries that carry that sign."""
    elected = torch.where(stacked.sum(0) >= 0, 1.0, -1.0).to(stacked.dtype)
    agree = stacked.sign() == elected
    total = (stacked * agree).sum(0)
    count = agree.sum(0).clamp(min=1)
    return total / count


def refactor(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, B)`` with ``B A`` the best rank-``rank`` approximation of ``delta``: ``B = U_k S_k``,
    ``A = V_k^T``; zero rows / columns where ``delta`` has fewer than ``rank`` singular values."""
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    k = min(rank, s.numel())
    a = torch.zeros(rank, delta.shape[1], dtype=delta.dtype, device=delta.device)
    b = torch.zeros(delta.shape[0], rank, dtype=delta.dtype, device=delta.device)
    a[:k] = vh[:k]
    b[:, :k] = u[:, :k] * s[:k]
    return a, b
