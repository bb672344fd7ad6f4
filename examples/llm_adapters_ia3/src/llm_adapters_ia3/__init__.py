"""(IA)^3 for llm-adapters: learned per-channel rescaling of keys, values and the feed-forward activation.

Installing this distribution registers the adapter type ``ia3`` through its entry point; use it with
``llm_adapters.attach(model, {"type": "ia3"})``.
"""

from __future__ import annotations

from llm_adapters.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "IA3": ".adapter",
    "IA3Config": ".config",
    "IA3InputScale": ".layers",
    "IA3OutputScale": ".layers",
    "IA3Scale": ".layers",
}
__all__ = [*sorted(_EXPORTS), "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
