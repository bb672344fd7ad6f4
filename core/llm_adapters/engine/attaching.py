"""Attaching, switching and detaching named adapters on a transformers model.

Everything here works through the adapter contract of :mod:`llm_adapters.adapter`; no adapter type is
known by name.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from ..adapter import AdapterConfig, Site
from ..config import parse_config
from ..errors import AdapterStateError, TargetError
from ..family import ModelFamily
from ..registry import get_adapter_type
from .merging import unmerge
from .model_level import attach_model_level
from .removal import remove_adapter
from .state import (
    HALF,
    NAME_RE,
    AdapterRecord,
    SiteRecord,
    _apply_active,
    _freeze_base,
    _module_dtype_device,
    _names,
    _resolve_module,
    _state,
    _unwrap,
    _wrapper,
    model_family,
)
from .targets import ResolvedSite, resolve_targets


def attach(model: nn.Module, config: AdapterConfig | dict[str, Any], *, name: str = "default") -> nn.Module:
    """Attach a new adapter called ``name`` and make it active (alongside those already active).

    ``config`` is a dict with a ``type`` key or an adapter config object. The base model is frozen; the
    new adapter's parameters are trainable. Works on ``meta``-device models (no memory is allocated).
    """
    cfg = parse_config(config)
    if not NAME_RE.match(name):
        raise AdapterStateError(f"adapter name {name!r} must start with a letter and use only letters, digits, _ and -")
    state = _state(model, create=True)
    if name in state.records:
        raise AdapterStateError(
            f"an adapter named {name!r} is already attached; detach it first or choose another name"
        )
    atype = get_adapter_type(cfg.type)()
    family = model_family(model)
    record = AdapterRecord(name, atype, cfg, model_level=atype.model_level)
    try:
        if atype.model_level:
            attach_model_level(model, state, record, family)
        else:
            sites = resolve_targets(model, atype.placements(cfg), family, adapter=cfg.type)
            _freeze_base(model, state)
            for site in sites:
                _attach_site(model, record, site, family)
    except Exception:
        state.records[name] = record
        detach(model, name)
        raise
    state.records[name] = record
    state.active.append(name)
    _apply_active(model, state)
    return model


def _attach_site(model: nn.Module, record: AdapterRecord, rs: ResolvedSite, family: ModelFamily | None) -> None:
    base = _resolve_module(model, rs.module_path)
    dtype, device = _module_dtype_device(base, model)
    wrapper = _wrapper(model, rs.module_path, create=True)
    out_features = wrapper.out_features
    # bound methods of the wrapper (not closures), so that copy.deepcopy / pickling of the model carry them over
    linear = hasattr(base, "weight") and base.weight.dim() == 2
    weight_fn = functools.partial(wrapper.part_weight, rs.part) if linear else None
    bias_fn = functools.partial(wrapper.part_bias, rs.part) if linear else None
    if rs.part is not None:
        assert family is not None
        fused_role = next(r for r, p in family.roles.items() if r == "attn.qkv")
        idx = family.part_indices(fused_role, rs.part, model.config)
        wrapper.set_part(rs.part, idx.to(device) if device.type != "meta" else idx)
        out_features = int(idx.numel())
        if rs.kind == "pre":
            raise TargetError(
                f"adapter {record.config.type!r}: a 'pre' layer cannot sit on part {rs.part!r} of {rs.module_path}"
            )
    site = Site(
        module_path=rs.module_path,
        kind=rs.kind,  # type: ignore[arg-type]
        role=rs.role,
        part=rs.part,
        in_features=wrapper.in_features,
        out_features=out_features,
        dtype=dtype,
        device=device,
        family=family,
        _weight_fn=weight_fn,
        _bias_fn=bias_fn,
    )
    layer_dtype = torch.float32 if dtype in HALF else dtype
    try:
        with torch.device(device):
            layer = record.adapter_type.create_layer(record.config, site)
    except TypeError as exc:
        if wrapper.empty:
            _unwrap(model, rs.module_path, wrapper)
        raise TargetError(
            f"adapter {record.config.type!r} cannot be placed on {rs.module_path} ({type(base).__name__}): {exc}"
        ) from None
    layer.to(dtype=layer_dtype)
    layer.train(model.training)
    slot = wrapper.add(record.name, rs.kind, rs.part, layer)
    record.sites.append(SiteRecord(rs.module_path, rs.kind, rs.part, rs.role, slot))


def set_active(model: nn.Module, names: str | list[str]) -> None:
    """Make exactly ``names`` active (``[]`` disables every adapter: the model computes its base outputs).

    A merged adapter that becomes inactive is unmerged first.
    """
    state = _state(model)
    wanted = _names(state, names, what="set_active") if names else []
    for n in list(state.merged):
        if n not in wanted:
            unmerge(model, n)
    state.active = [n for n in state.records if n in wanted]
    _apply_active(model, state)


def detach(model: nn.Module, name: str | list[str] | None = None) -> nn.Module:
    """Remove adapters (default: all). When none is left the model is exactly as before :func:`attach`:
    same modules, state-dict keys, outputs and ``requires_grad`` flags."""
    state = _state(model)
    for n in _names(state, name, what="detach"):
        if n in state.merged:
            unmerge(model, n)
        remove_adapter(model, state, n)
    return model
