"""AdapterFusion for llm-adapters: the adapter type ``fusion`` and the command ``llm-adapters fuse``.

Installing this distribution registers both through its entry point (``fusion`` in the group
``llm_adapters``); use it with ``llm_adapters.attach(model, {"type": "fusion", "adapters": [dir_a, dir_b]})``.
"""

from __future__ import annotations

from llm_adapters.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Fusion": ".adapter",
    "FusionConfig": ".config",
    "FusionLayer": ".layer",
}
__all__ = [*sorted(_EXPORTS), "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
