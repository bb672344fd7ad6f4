"""Temporary switching: ``with la.disabled(model):`` computes exactly the base model, ``with la.using(model,
names):`` exactly that set of adapters; the previous state (active and merged adapters) comes back when the
block ends, also when it raises."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from .attaching import set_active
from .merging import merge
from .state import _state, has_adapters


@contextmanager
def using(model: nn.Module, names: str | list[str]) -> Iterator[nn.Module]:
    """Within the block exactly ``names`` are active (merged adapters left out are unmerged for it); after it
    the adapters active before are active again and those merged before are merged again."""
    state = _state(model)
    active, merged = list(state.active), set(state.merged)
    set_active(model, names)
    try:
        yield model
    finally:
        if has_adapters(model):  # the block may have detached everything
            state = _state(model)
            set_active(model, [n for n in active if n in state.records])
            again = [n for n in state.active if n in merged and n not in state.merged]
            if again:
                merge(model, again)


def disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block no adapter is active: the model computes exactly its base outputs."""
    return using(model, [])
