"""Merging adapters into the base weights and taking them back out."""

from __future__ import annotations

from torch import nn

from ..errors import AdapterStateError
from .removal import remove_adapter
from .state import _names, _state, _wrapper


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
            remove_adapter(model, state, n)
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
