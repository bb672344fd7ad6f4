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
from .base_weights import weight_shape
from .merging import check_composition, unmerge
from .model_level import attach_model_level, remove_model_level
from .removal import remove_adapter
from .routing import install as install_routing
from .state import (
    HALF,
    NAME_RE,
    STATE_ATTR,
    AdapterRecord,
    AdapterState,
    SiteRecord,
    _apply_active,
    _freeze_base,
    _module_dtype_device,
    _names,
    _resolve_module,
    _state,
    _unwrap,
    _wrapper,
    has_adapters,
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
    if has_adapters(model) and name in _state(model).records:
        raise AdapterStateError(
            f"an adapter named {name!r} is already attached; detach it first or choose another name"
        )
    atype = get_adapter_type(cfg.type)()
    family = model_family(model)
    placements = None if atype.model_level else atype.placements(cfg)
    sites = [] if placements is None else resolve_targets(model, placements, family, adapter=cfg.type)
    # from here on the model changes: any failure puts it back exactly as it was
    fresh = not has_adapters(model)
    state = _state(model, create=True)
    record = AdapterRecord(name, atype, cfg, model_level=atype.model_level)
    touched: list[str] = []
    try:
        _freeze_base(model, state)
        if atype.model_level:
            attach_model_level(model, state, record, family)
        for site in sites:
            touched.append(site.module_path)
            _attach_site(model, record, site, family)
    except BaseException:
        _roll_back(model, state, record, touched, fresh)
        raise
    state.records[name] = record
    state.active.append(name)
    _apply_active(model, state)
    install_routing(model, state)
    return model


def _roll_back(model: nn.Module, state: AdapterState, record: AdapterRecord, paths: list[str], fresh: bool) -> None:
    """Undo a failed attach: the layers placed so far, wrappers left empty, a model-level module and its
    hooks, and (when this attach created the adapter state) the ``requires_grad`` flags and the state."""
    for path in dict.fromkeys(paths):
        try:
            wrapper = _wrapper(model, path, create=False)
        except AdapterStateError:
            continue
        wrapper.remove(record.name)
        if wrapper.empty:
            _unwrap(model, path, wrapper)
    if record.model_level:
        remove_model_level(model, state, record.name)
    if fresh:
        for pname, p in model.named_parameters():
            if pname in state.requires_grad:
                p.requires_grad_(state.requires_grad[pname])
        del model.__dict__[STATE_ATTR]
    else:
        _apply_active(model, state)


def _attach_site(model: nn.Module, record: AdapterRecord, rs: ResolvedSite, family: ModelFamily | None) -> None:
    base = _resolve_module(model, rs.module_path)
    dtype, device = _module_dtype_device(base, model)
    wrapper = _wrapper(model, rs.module_path, create=True)
    out_features = wrapper.out_features
    # bound methods of the wrapper (not closures), so that copy.deepcopy / pickling of the model carry them over
    shape = weight_shape(base)  # the whole weight's, also when it is sharded or quantized
    linear = shape is not None and len(shape) == 2
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
    leaving = [n for n in state.merged if n not in wanted]  # merged adapters that become inactive are unmerged
    new_active = [n for n in state.records if n in wanted]
    check_composition(model, state, unmerging=leaving, active=new_active, what=f"set_active({wanted})")
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
