"""Series bottleneck adapters (AdapterH, AdapterP) for llm-adapters: the adapter type ``series``."""

from __future__ import annotations

from llm_adapters.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "SeriesAdapter": ".adapter",
    "SeriesConfig": ".config",
    "SeriesLayer": ".layer",
}
__all__ = [*sorted(_EXPORTS), "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
