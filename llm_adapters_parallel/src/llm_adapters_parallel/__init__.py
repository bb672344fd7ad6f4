"""Parallel bottleneck adapters (constant or learned scale) for llm-adapters: the adapter type ``parallel``."""

from __future__ import annotations

from llm_adapters.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "ParallelAdapter": ".adapter",
    "PRESETS": ".config",
    "ParallelConfig": ".config",
    "ParallelLayer": ".layer",
}
__all__ = [*sorted(_EXPORTS), "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
