"""Merging adapters into the base weights and taking them back out.

Each wrapped module folds its merged layers in at once (see :mod:`llm_adapters.engine.wrapper` for the rules
and the copy of the original tensors that makes every cycle exact). A merge is all or nothing: every module
is checked before any weight changes, and a module that fails (say ``safe=True`` finds a non-finite weight)
puts back the modules merged before it.
"""

from __future__ import annotations

from torch import nn

from ..errors import AdapterStateError
from .removal import remove_adapter
from .state import _names, _state, _wrapper


def _modules(model: nn.Module, state, names: list[str]):  # type: ignore[no-untyped-def]
    """The wrappers that hold layers of ``names``, each once, in order."""
    paths = dict.fromkeys(site.module_path for n in names for site in state.records[n].sites)
    return [_wrapper(model, path, create=False) for path in paths]


def merge(
    model: nn.Module, name: str | list[str] | None = None, *, safe: bool = False, unload: bool = False
) -> nn.Module:
    """Fold adapters (default: every active one) into the base weights exactly.

    Merging twice is a no-op. ``safe=True`` checks that the merged weights are finite before anything
    changes. With ``unload=True`` the merged adapters are then removed, leaving a plain model whose weights
    carry them (for export). An adapter merges when every one of its layers declares ``mergeable``; model-level
    adapters (prompt-based methods) never do.
    """
    state = _state(model)
    names = _names(state, name, what="merge") if name is not None else list(state.active)
    for n in names:
        rec = state.records[n]
        if rec.model_level:
            raise AdapterStateError(
                f"adapter {n!r} ({rec.config.type}) cannot be merged: it acts on the model's inputs and cache, "
                "not on a weight"
            )
        if n not in state.active:
            raise AdapterStateError(f"adapter {n!r} is not active; activate it with set_active before merging")
        for site in rec.sites:
            layer = _wrapper(model, site.module_path, create=False).adapters[n][site.slot]
            if not layer.mergeable:
                raise AdapterStateError(
                    f"adapter {n!r} ({rec.config.type}) cannot be merged: its {site.slot!r} layer "
                    f"({type(layer).__name__}) does not declare mergeable = True (its function is not a linear "
                    "change of the base weight)"
                )
    todo = [n for n in names if n not in state.merged]
    wrappers = _modules(model, state, todo)
    for wrapper in wrappers:  # check everything before changing any weight
        wrapper.check_mergeable(todo)
    done = []
    try:
        for wrapper in wrappers:
            wrapper.merge(todo, safe=safe)
            done.append(wrapper)
    except BaseException:
        for wrapper in reversed(done):
            for n in todo:
                wrapper.unmerge(n)
        raise
    state.merged.update(todo)
    if unload:
        for n in names:
            for site in state.records[n].sites:
                _wrapper(model, site.module_path, create=False).forget_merge(n)
            remove_adapter(model, state, n)
    return model


def unmerge(model: nn.Module, name: str | list[str] | None = None) -> nn.Module:
    """Take merged adapters (default: all) back out of the base weights; with nothing left merged, the base
    tensors are bit for bit what they were before the first merge."""
    state = _state(model)
    names = _names(state, name, what="unmerge") if name is not None else list(state.merged)
    check_composition(model, state, unmerging=names, active=state.active, what=f"unmerge {', '.join(names)}")
    for n in [n for n in names if n in state.merged]:
        for wrapper in _modules(model, state, [n]):
            wrapper.unmerge(n)
        state.merged.discard(n)
    return model


def check_composition(model: nn.Module, state, *, unmerging: list[str], active: list[str], what: str) -> None:  # type: ignore[no-untyped-def]
    """Raise (changing nothing) if, after ``unmerging`` these adapters with ``active`` the active set, some
    module would fold a layer in while an unmerged active one next to it no longer sees the same
    composition (see :meth:`AdaptedModule.composition_problem`)."""
    stay = [n for n in state.merged if n not in unmerging]
    if not stay:
        return
    for wrapper in _modules(model, state, stay):
        merged = wrapper.merged_keys - set(wrapper.slots_of(unmerging))
        problem = wrapper.composition_problem(merged, active)
        if problem:
            raise AdapterStateError(f"cannot {what}: {problem}")
