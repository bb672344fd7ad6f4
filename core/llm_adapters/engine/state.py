"""The adapter state of a model: what is attached where, what is active and merged, and the look-ups
every other part of the engine shares (wrappers by path, an adapter's parameters and tensors, listings).

A model's adapter state lives in ``model._llm_adapters`` (a plain object, not a module), the wrappers in the
module tree, and model-level adapters under ``model.llm_adapters_model_level``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..adapter import AdapterConfig, AdapterType
from ..errors import AdapterStateError
from ..family import ModelFamily
from .targets import MODEL_LEVEL_ATTR
from .wrapper import AdaptedModule

STATE_ATTR = "_llm_adapters"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
HALF = (torch.float16, torch.bfloat16)


@dataclass
class SiteRecord:
    module_path: str
    kind: str
    part: str | None
    role: str | None
    slot: str


@dataclass
class AdapterRecord:
    name: str
    adapter_type: AdapterType
    config: AdapterConfig
    sites: list[SiteRecord] = field(default_factory=list)
    model_level: bool = False


@dataclass
class AdapterState:
    records: dict[str, AdapterRecord] = field(default_factory=dict)
    active: list[str] = field(default_factory=list)
    merged: set[str] = field(default_factory=set)
    requires_grad: dict[str, bool] = field(default_factory=dict)  # base parameter name -> flag before attach
    hooks: list[Any] = field(default_factory=list)  # the model-level forward pre- and post-hook handles
    route_hooks: list[Any] = field(default_factory=list)  # the per-row routing hook (see routing.py)
    routed: bool = False  # whether the last forward chose adapters per row
    forced: Any = None  # adapter_names for every forward of a running generate(adapter_names=...)


@dataclass(frozen=True)
class AdapterInfo:
    """One entry of :func:`list_adapters`."""

    name: str
    type: str
    active: bool
    merged: bool
    sites: int
    parameters: int
    #: whether every layer of the adapter declares ``mergeable`` (model-level adapters never merge)
    mergeable: bool = False


def _state(model: nn.Module, *, create: bool = False) -> AdapterState:
    state = model.__dict__.get(STATE_ATTR)
    if state is None:
        if not create:
            raise AdapterStateError(f"{type(model).__name__} has no adapters attached")
        state = AdapterState()
        model.__dict__[STATE_ATTR] = state
    return state


def has_adapters(model: nn.Module) -> bool:
    return STATE_ATTR in model.__dict__


def model_family(model: nn.Module) -> ModelFamily | None:
    """The installed family covering ``model.config.model_type``, or None."""
    from ..registry import family_for_model_type

    return family_for_model_type(getattr(getattr(model, "config", None), "model_type", None))


def _names(state: AdapterState, name: str | list[str] | None, *, what: str) -> list[str]:
    if name is None:
        return list(state.records)
    names = [name] if isinstance(name, str) else list(name)
    for n in names:
        if n not in state.records:
            attached = ", ".join(state.records) or "none"
            raise AdapterStateError(f"{what}: no adapter named {n!r} is attached (attached: {attached})")
    return names


def _wrapper(model: nn.Module, path: str, *, create: bool) -> AdaptedModule:
    parent_path, _, leaf = path.rpartition(".")
    parent = _resolve_module(model, parent_path) if parent_path else model
    child = getattr(parent, leaf)
    if isinstance(child, AdaptedModule):
        return child
    if not create:
        raise AdapterStateError(f"{path} is not wrapped")
    wrapper = AdaptedModule(child)
    setattr(parent, leaf, wrapper)
    return wrapper


def _resolve_module(model: nn.Module, path: str) -> nn.Module:
    mod: nn.Module = model
    for part in path.split("."):
        mod = getattr(mod, part)
        if isinstance(mod, AdaptedModule):
            mod = mod.base
    return mod


def _unwrap(model: nn.Module, path: str, wrapper: AdaptedModule) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = _resolve_module(model, parent_path) if parent_path else model
    setattr(parent, leaf, wrapper.base)


def _module_dtype_device(module: nn.Module, model: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The dtype (of floating-point values: a quantized layer's packed integers do not count) and device of
    ``module``'s parameters, falling back to the model's."""
    device = next((p.device for p in module.parameters()), None)
    for p in itertools.chain(module.parameters(), model.parameters()):
        if p.is_floating_point():
            return p.dtype, device if device is not None else p.device
    p = next(model.parameters())
    return torch.float32, device if device is not None else p.device


def _freeze_base(model: nn.Module, state: AdapterState) -> None:
    if state.requires_grad:
        return
    for name, p in model.named_parameters():
        state.requires_grad[name] = p.requires_grad
        p.requires_grad_(False)


def _apply_active(model: nn.Module, state: AdapterState) -> None:
    for wrapper in _wrappers(model):
        wrapper.set_active(state.active)


def _wrappers(model: nn.Module) -> list[AdaptedModule]:
    return [m for m in model.modules() if isinstance(m, AdaptedModule)]


def list_adapters(model: nn.Module) -> list[AdapterInfo]:
    """The attached adapters, in attachment order."""
    if not has_adapters(model):
        return []
    state = _state(model)
    out = []
    for name, rec in state.records.items():
        out.append(
            AdapterInfo(
                name=name,
                type=rec.config.type,
                active=name in state.active,
                merged=name in state.merged,
                sites=len(rec.sites),
                parameters=sum(t.numel() for t in adapter_parameters(model, name).values()),
                mergeable=_mergeable(model, rec),
            )
        )
    return out


def _mergeable(model: nn.Module, rec: AdapterRecord) -> bool:
    if rec.model_level or not rec.sites:
        return False
    return all(
        _wrapper(model, site.module_path, create=False).adapters[rec.name][site.slot].mergeable for site in rec.sites
    )


def adapter_parameters(model: nn.Module, name: str) -> dict[str, nn.Parameter]:
    """The parameters of adapter ``name``, keyed by the name-free file key (``<module path>.<slot>.<param>``)."""
    state = _state(model)
    rec = state.records[name]
    out: dict[str, nn.Parameter] = {}
    if rec.model_level:
        module = getattr(model, MODEL_LEVEL_ATTR)[name]
        for k, p in module.named_parameters():
            out[f"{MODEL_LEVEL_ATTR}.{k}"] = p
        return out
    for site in rec.sites:
        layer = _wrapper(model, site.module_path, create=False).adapters[name][site.slot]
        for k, p in layer.named_parameters():
            out[f"{site.module_path}.{site.slot}.{k}"] = p
    return out


def adapter_tensors(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers of adapter ``name`` (what a file holds)."""
    state = _state(model)
    rec = state.records[name]
    if rec.model_level:
        module = getattr(model, MODEL_LEVEL_ATTR)[name]
        return {f"{MODEL_LEVEL_ATTR}.{k}": v for k, v in module.state_dict().items()}
    out = {}
    for site in rec.sites:
        layer = _wrapper(model, site.module_path, create=False).adapters[name][site.slot]
        for k, v in layer.state_dict().items():
            out[f"{site.module_path}.{site.slot}.{k}"] = v
    return out


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts; the total includes adapter parameters."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def adapter_config(model: nn.Module, name: str) -> AdapterConfig:
    """The validated config adapter ``name`` was attached with."""
    state = _state(model)
    _names(state, name, what="adapter_config")
    return state.records[name].config
