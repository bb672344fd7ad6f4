"""The injection engine: placing adapter layers on a model, switching, merging and removing them.

* :mod:`.targets`: resolving placements (roles, suffixes, regexes) to module paths;
* :mod:`.wrapper`: the one module that composes adapter layers around a base module;
* :mod:`.state`: the model's adapter state and the look-ups shared by the rest;
* :mod:`.attaching`: attach, set_active, detach; :mod:`.merging`: merge, unmerge;
* :mod:`.model_level`: model-level (prompt-based) adapters and their forward hooks;
* :mod:`.removal`: taking one adapter off the model;
* :mod:`.routing` and :mod:`.rows`: adapters chosen per row (``adapter_names``); :mod:`.scoped`: temporary
  switching (``using``, ``disabled``);
* :mod:`.combining`: a new adapter from a weighted combination of attached ones (``combine``).
"""

from __future__ import annotations

from .attaching import attach, detach, set_active
from .combining import combine
from .merging import merge, unmerge
from .scoped import disabled, using
from .state import (
    AdapterInfo,
    adapter_config,
    adapter_parameters,
    adapter_tensors,
    has_adapters,
    list_adapters,
    model_family,
    trainable_parameters,
)

__all__ = [
    "AdapterInfo",
    "adapter_config",
    "adapter_parameters",
    "adapter_tensors",
    "attach",
    "combine",
    "detach",
    "disabled",
    "has_adapters",
    "list_adapters",
    "merge",
    "model_family",
    "set_active",
    "trainable_parameters",
    "unmerge",
    "using",
]
