"""Combining attached adapters into a new one: ``combine(model, ["a", "b"], [0.7, 0.3], "ab", method="cat")``.

The kernel checks what every adapter type shares (the names are attached, the inputs are of one type, the new
name is free and valid, one weight per adapter) and hands the rest to the adapter type. The math is the type's
own: the kernel knows no adapter type by name.

**The optional ``combine`` method of an adapter type.** An :class:`~llm_adapters.adapter.AdapterType` that
supports combining defines::

    def combine(self, model, adapters, weights, name, *, method, density, rank, seed) -> None

It receives the validated inputs (``adapters``: names of attached adapters of this type, in order;
``weights``: one float per adapter; ``name``: free and valid), checks the method and its options (raising
``AdapterStateError`` with what does not fit), and attaches the new adapter ``name`` with
:func:`~llm_adapters.engine.attach`, filling its parameters. On any failure it leaves no adapter ``name``
attached. A type without ``combine`` is refused: ``adapter type 'X' does not support combining``.
"""

from __future__ import annotations

import math

from torch import nn

from ..errors import AdapterStateError
from .state import NAME_RE, _names, _state


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
) -> nn.Module:
    """Attach a new adapter ``name``: the weighted combination of the attached ``adapters``.

    Like :func:`~llm_adapters.engine.attach`, the new adapter is made active alongside those already active
    (the inputs stay attached and keep their state; call ``set_active(model, name)`` to use the combination
    alone). It saves, loads, merges and detaches like any adapter. ``method`` and its options (``density``,
    ``rank``, ``seed``) are the adapter type's: see its ``combine`` (for LoRA: ``cat``, ``linear``, ``svd``,
    ``ties``, ``dare_linear``, ``dare_ties``). Returns ``model``.
    """
    state = _state(model)
    if isinstance(adapters, str) or not isinstance(adapters, (list, tuple)) or not adapters:
        raise AdapterStateError(f"combine: adapters must be a non-empty list of adapter names, got {adapters!r}")
    names = _names(state, list(adapters), what="combine")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise AdapterStateError(f"adapter name {name!r} must start with a letter and use only letters, digits, _ and -")
    if name in state.records:
        raise AdapterStateError(
            f"combine: an adapter named {name!r} is already attached; detach it first or choose another name"
        )
    if isinstance(weights, (str, bytes)) or not isinstance(weights, (list, tuple)):
        raise AdapterStateError(f"combine: weights must be a list of numbers, one per adapter, got {weights!r}")
    if len(weights) != len(names):
        raise AdapterStateError(
            f"combine: {len(weights)} weight(s) for {len(names)} adapter(s); give one weight per adapter"
        )
    values = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise AdapterStateError(f"combine: every weight must be a finite number, got {w!r}")
        values.append(float(w))
    types = {n: state.records[n].config.type for n in names}
    if len(set(types.values())) > 1:
        listed = ", ".join(f"{n!r} is {t!r}" for n, t in types.items())
        raise AdapterStateError(f"combine: the adapters must be of one type ({listed})")
    atype = state.records[names[0]].adapter_type
    kind = types[names[0]]
    if not callable(getattr(atype, "combine", None)):
        raise AdapterStateError(f"adapter type {kind!r} does not support combining")
    atype.combine(model, names, values, name, method=method, density=density, rank=rank, seed=seed)
    return model
