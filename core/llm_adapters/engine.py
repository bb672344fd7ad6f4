"""The injection engine: attach, switch, merge and detach named adapters on a transformers model.

Everything here works through the adapter contract of :mod:`llm_adapters.adapter`; no adapter type is
known by name. A model's adapter state lives in ``model._llm_adapters`` (a plain object, not a module), the
wrappers in the module tree, and model-level adapters under ``model.llm_adapters_model_level``.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .adapter import AdapterConfig, AdapterType, ModelAdapter, Site
from .config import parse_config
from .errors import AdapterStateError, TargetError
from .family import ModelFamily
from .registry import family_for_model_type, get_adapter_type
from .targets import MODEL_LEVEL_ATTR, ResolvedSite, resolve_targets
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


@dataclass(frozen=True)
class AdapterInfo:
    """One entry of :func:`list_adapters`."""

    name: str
    type: str
    active: bool
    merged: bool
    sites: int
    parameters: int


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
    for p in module.parameters():
        return p.dtype, p.device
    p = next(model.parameters())
    return p.dtype, p.device


def _freeze_base(model: nn.Module, state: AdapterState) -> None:
    if state.requires_grad:
        return
    for name, p in model.named_parameters():
        state.requires_grad[name] = p.requires_grad
        p.requires_grad_(False)


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
            _attach_model_level(model, state, record, family)
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


def _attach_model_level(
    model: nn.Module, state: AdapterState, record: AdapterRecord, family: ModelFamily | None
) -> None:
    dims = family.dims(model.config) if family is not None else None
    _freeze_base(model, state)
    p = next(model.parameters())
    with torch.device(p.device):
        module = record.adapter_type.create_model_adapter(record.config, model, dims)
    if not isinstance(module, ModelAdapter):
        raise TypeError(f"{type(record.adapter_type).__name__}.create_model_adapter must return a ModelAdapter")
    module.train(model.training)
    container = getattr(model, MODEL_LEVEL_ATTR, None)
    if container is None:
        container = nn.ModuleDict()
        model.add_module(MODEL_LEVEL_ATTR, container)
    container[record.name] = module
    if not state.hooks:
        state.hooks = [
            model.register_forward_pre_hook(_model_level_pre_hook, with_kwargs=True),
            model.register_forward_hook(_model_level_post_hook, with_kwargs=True),
        ]


def _active_model_level(model: nn.Module) -> list[ModelAdapter]:
    state = model.__dict__.get(STATE_ATTR)
    container = getattr(model, MODEL_LEVEL_ATTR, None)
    if state is None or container is None:
        return []
    return [container[name] for name in state.active if name in container]


@functools.lru_cache(maxsize=64)
def _positional_names(forward: Any) -> tuple[str, ...]:
    """Names of the positional parameters of ``forward`` (a plain function: its first, ``self``, dropped
    when ``bound``). Cached per function, since the hook runs on every forward of the model."""
    return tuple(
        p.name
        for p in inspect.signature(forward).parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


def _bind_positional(model: nn.Module, args: tuple, kwargs: dict) -> dict:
    """``kwargs`` plus ``args`` bound to the names of the model's forward parameters."""
    forward = model.forward
    func = getattr(forward, "__func__", None)  # keyed on the function, so the cache holds no model alive
    params = _positional_names(func)[1:] if func is not None else _positional_names(forward)
    if len(args) > len(params):
        raise TypeError(f"{type(model).__name__}.forward takes {len(params)} positional arguments, got {len(args)}")
    bound = dict(zip(params[: len(args)], args, strict=True))
    clash = sorted(set(bound) & set(kwargs))
    if clash:
        raise TypeError(f"{type(model).__name__}.forward got multiple values for {', '.join(clash)}")
    return {**bound, **kwargs}


def _model_level_pre_hook(model: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    """Runs before every forward: the active model-level adapters' ``pre_forward``, in attachment order."""
    active = _active_model_level(model)
    if not active:
        return None
    args, kwargs = (), _bind_positional(model, args, kwargs)
    for module in active:
        args, kwargs = module.pre_forward(model, args, kwargs)
    return args, kwargs


def _model_level_post_hook(model: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
    """Runs after every forward: the active model-level adapters' ``post_forward``, in reverse order."""
    for module in reversed(_active_model_level(model)):
        output = module.post_forward(model, kwargs, output)
    return output


def _apply_active(model: nn.Module, state: AdapterState) -> None:
    for wrapper in _wrappers(model):
        wrapper.set_active(state.active)


def _wrappers(model: nn.Module) -> list[AdaptedModule]:
    return [m for m in model.modules() if isinstance(m, AdaptedModule)]


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
            )
        )
    return out


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


def merge(model: nn.Module, name: str | list[str] | None = None, *, unload: bool = False) -> nn.Module:
    """Fold mergeable adapters (default: every active one) into the base weights exactly.

    Merging twice is a no-op. With ``unload=True`` the merged adapters are then removed, leaving a plain
    model whose weights carry them (for export).
    """
    state = _state(model)
    names = _names(state, name, what="merge") if name is not None else list(state.active)
    for n in names:
        rec = state.records[n]
        if not rec.adapter_type.mergeable:
            raise AdapterStateError(
                f"adapter {n!r} ({rec.config.type}) cannot be merged: its function is not a weight change"
            )
        if n not in state.active:
            raise AdapterStateError(f"adapter {n!r} is not active; activate it with set_active before merging")
    for n in names:  # check everything before changing any weight
        for site in state.records[n].sites:
            _wrapper(model, site.module_path, create=False).check_mergeable(n)
    for n in names:
        for site in state.records[n].sites:
            _wrapper(model, site.module_path, create=False).merge(n)
        state.merged.add(n)
    if unload:
        for n in names:
            for site in state.records[n].sites:
                _wrapper(model, site.module_path, create=False).forget_merge(n)
            state.merged.discard(n)
            detach(model, n)
    return model


def unmerge(model: nn.Module, name: str | list[str] | None = None) -> nn.Module:
    """Take merged adapters (default: all) back out of the base weights."""
    state = _state(model)
    names = _names(state, name, what="unmerge") if name is not None else list(state.merged)
    for n in names:
        if n not in state.merged:
            continue
        for site in reversed(state.records[n].sites):
            _wrapper(model, site.module_path, create=False).unmerge(n)
        state.merged.discard(n)
    return model


def detach(model: nn.Module, name: str | list[str] | None = None) -> nn.Module:
    """Remove adapters (default: all). When none is left the model is exactly as before :func:`attach`:
    same modules, state-dict keys, outputs and ``requires_grad`` flags."""
    state = _state(model)
    names = _names(state, name, what="detach")
    for n in names:
        if n in state.merged:
            unmerge(model, n)
        rec = state.records.pop(n)
        if n in state.active:
            state.active.remove(n)
        if rec.model_level:
            container = getattr(model, MODEL_LEVEL_ATTR, None)
            if container is not None and n in container:
                container[n].on_detach(model)
                del container[n]
            continue
        for path in dict.fromkeys(s.module_path for s in rec.sites):
            try:
                wrapper = _wrapper(model, path, create=False)
            except AdapterStateError:
                continue
            wrapper.remove(n)
            if wrapper.empty:
                _unwrap(model, path, wrapper)
    container = getattr(model, MODEL_LEVEL_ATTR, None)
    if container is not None and len(container) == 0:
        delattr(model, MODEL_LEVEL_ATTR)
        for handle in state.hooks:
            handle.remove()
        state.hooks = []
    if not state.records:
        for pname, p in model.named_parameters():
            if pname in state.requires_grad:
                p.requires_grad_(state.requires_grad[pname])
        del model.__dict__[STATE_ATTR]
    else:
        _apply_active(model, state)
    return model
