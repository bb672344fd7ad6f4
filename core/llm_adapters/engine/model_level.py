"""Model-level adapters (prompt-based methods): stored under ``model.llm_adapters_model_level`` and run
by one forward pre-hook and one forward hook on the model while any of them is active."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import nn

from ..family import ModelFamily
from ..layers import ModelAdapter
from .state import STATE_ATTR, AdapterRecord, AdapterState, _freeze_base
from .targets import MODEL_LEVEL_ATTR


def attach_model_level(
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


def remove_model_level(model: nn.Module, state: AdapterState, name: str) -> None:
    """Take model-level adapter ``name`` off the model; the hooks go with the last one."""
    container = getattr(model, MODEL_LEVEL_ATTR, None)
    if container is not None and name in container:
        container[name].on_detach(model)
        del container[name]
    if container is not None and len(container) == 0:
        delattr(model, MODEL_LEVEL_ATTR)
        for handle in state.hooks:
            handle.remove()
        state.hooks = []
