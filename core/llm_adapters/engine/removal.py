"""Taking an adapter off a model (its merge, if any, already undone or deliberately kept)."""

from __future__ import annotations

from torch import nn

from ..errors import AdapterStateError
from .model_level import remove_model_level
from .state import STATE_ATTR, AdapterState, _apply_active, _unwrap, _wrapper


def remove_adapter(model: nn.Module, state: AdapterState, name: str) -> None:
    """Remove adapter ``name``'s layers (or its model-level module) and its record. When no adapter is left,
    the base parameters get back their ``requires_grad`` flags and the state goes."""
    rec = state.records.pop(name)
    if name in state.active:
        state.active.remove(name)
    state.merged.discard(name)
    if rec.model_level:
        remove_model_level(model, state, name)
    else:
        for path in dict.fromkeys(s.module_path for s in rec.sites):
            try:
                wrapper = _wrapper(model, path, create=False)
            except AdapterStateError:
                continue
            wrapper.remove(name)
            if wrapper.empty:
                _unwrap(model, path, wrapper)
    if not state.records:
        from .routing import uninstall

        uninstall(model, state)
        for pname, p in model.named_parameters():
            if pname in state.requires_grad:
                p.requires_grad_(state.requires_grad[pname])
        del model.__dict__[STATE_ATTR]
    else:
        _apply_active(model, state)
