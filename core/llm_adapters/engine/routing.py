"""Per-row adapters in one batch: ``model(..., adapter_names=[...])`` and ``model.generate(...,
adapter_names=[...])``, one name per row (``"__base__"`` for none), as PEFT spells it.

A forward pre-hook on the model takes ``adapter_names`` out of the call, checks it, and hands every wrapper the
rows of each adapter; a wrapper then runs each adapter's layers on its own rows only (``index_select`` in,
``index_copy`` / ``index_add`` out), so a batch mixing k adapters costs about one adapter's extra work over the
batch, not k forward passes. The routes are cleared on the next call without ``adapter_names``.

Under ``generate`` with beams the batch has ``num_beams`` rows per prompt: a list of one name per prompt is
repeated for the beams. Merged adapters and model-level (prompt-based) adapters cannot be routed: a clear
error, never a silently wrong result.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

from ..errors import AdapterStateError
from .state import STATE_ATTR, AdapterState, _wrappers

BASE = "__base__"
KEY = "adapter_names"


def install(model: nn.Module, state: AdapterState) -> None:
    """Register the routing hook once per model (while any adapter is attached), and let the model's
    ``generate`` take ``adapter_names`` (transformers' own ``generate`` refuses keyword arguments its forward
    does not declare, so the names are handed to every forward of the generation instead)."""
    if not state.route_hooks:
        state.route_hooks = [model.register_forward_pre_hook(_pre_hook, with_kwargs=True, prepend=True)]
        if callable(getattr(type(model), "generate", None)):
            model.__dict__["generate"] = types.MethodType(_generate, model)


def uninstall(model: nn.Module, state: AdapterState) -> None:
    for handle in state.route_hooks:
        handle.remove()
    state.route_hooks = []
    if (
        isinstance(model.__dict__.get("generate"), types.MethodType)
        and model.__dict__["generate"].__func__ is _generate
    ):
        del model.__dict__["generate"]


def _generate(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """``model.generate`` with ``adapter_names`` (one per prompt; repeated for beams and samples)."""
    names = kwargs.pop(KEY, None)
    generate = type(model).generate
    state: AdapterState | None = model.__dict__.get(STATE_ATTR)
    if names is None or state is None:
        return generate(model, *args, **kwargs)
    state.forced = names
    try:
        return generate(model, *args, **kwargs)
    finally:
        state = model.__dict__.get(STATE_ATTR)
        if state is not None:
            state.forced = None


def _batch_size(args: tuple, kwargs: dict) -> int | None:
    for key in ("input_ids", "inputs_embeds"):
        value = kwargs.get(key)
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
    if args and isinstance(args[0], torch.Tensor):
        return int(args[0].shape[0])
    return None


def routes_for(state: AdapterState, names: Any, batch: int | None) -> dict[str, torch.Tensor]:
    """``{adapter name: row indices}`` for ``names`` (one per row, or one per prompt under beams)."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise AdapterStateError(f"{KEY} must be a list of adapter names, one per row, got {names!r}")
    if batch is not None and (not names or batch % len(names)):
        raise AdapterStateError(
            f"{KEY} has {len(names)} name(s) but the batch has {batch} row(s); give one name per row "
            f"({BASE!r} for the base model)"
        )
    unknown = sorted({n for n in names if n != BASE and n not in state.records})
    if unknown:
        attached = ", ".join(state.records) or "none"
        raise AdapterStateError(f"{KEY}: no adapter named {', '.join(map(repr, unknown))} (attached: {attached})")
    if state.merged:
        raise AdapterStateError(
            f"{KEY}: adapter(s) {', '.join(sorted(state.merged))} are merged into the base weights, which every row "
            "would then carry; unmerge them to choose adapters per row"
        )
    model_level = sorted({n for n in (*names, *state.active) if n in state.records and state.records[n].model_level})
    if model_level:
        raise AdapterStateError(
            f"{KEY}: prompt-based adapter(s) {', '.join(model_level)} change the whole batch's inputs and cannot be "
            "chosen per row; detach or deactivate them, or run them in a batch of their own"
        )
    repeat = 1 if batch is None else batch // len(names)
    rows: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if n != BASE:
            rows.setdefault(n, []).extend(range(i * repeat, (i + 1) * repeat))
    return {n: torch.tensor(r, dtype=torch.long) for n, r in rows.items()}


def _pre_hook(model: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
    state: AdapterState | None = model.__dict__.get(STATE_ATTR)
    if state is None:
        return None
    names = kwargs.pop(KEY, None)
    if names is None:
        names = state.forced  # inside generate(adapter_names=...)
    if names is None:
        if state.routed:  # the previous call routed: this one does not
            for wrapper in _wrappers(model):
                wrapper.set_routes(None)
            state.routed = False
        return args, kwargs
    routes = routes_for(state, names, _batch_size(args, kwargs))
    for wrapper in _wrappers(model):
        wrapper.set_routes(routes)
    state.routed = True
    return args, kwargs
