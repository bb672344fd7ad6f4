"""llm-adapters: parameter-efficient fine-tuning of large language models with adapters.

The core defines the plugin boundary (:mod:`llm_adapters.hookspecs`), discovers plugins through entry
points, and owns everything adapters share: placing them, switching, merging, saving and loading. Adapter
types, model families and tasks all come from plugins.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .adapter import AdapterConfig, AdapterLayer, AdapterType, ModelAdapter, Placement, Site  # noqa: E402
from .engine import (  # noqa: E402
    AdapterInfo,
    attach,
    detach,
    list_adapters,
    merge,
    set_active,
    trainable_parameters,
    unmerge,
)
from .family import AttentionDims, FusedProjection, ModelFamily  # noqa: E402
from .files import load_adapter, save_adapter  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .plugins import get_plugin_manager  # noqa: E402
from .registry import (  # noqa: E402
    adapter_types,
    get_adapter_type,
    get_registry,
    get_task,
    model_families,
    require_family,
    tasks,
)


def load_model(name_or_path: str = "smollm2-135m", **options):  # type: ignore[no-untyped-def]
    """Load a causal LM and its tokenizer: an HF hub id, a local directory, a GGUF file, or the embedded
    default ``smollm2-135m``. See :func:`llm_adapters.models.load_model`."""
    from .models import load_model as _load

    return _load(name_or_path, **options)


__all__ = [
    "AdapterConfig",
    "AdapterInfo",
    "AdapterLayer",
    "AdapterType",
    "AttentionDims",
    "FusedProjection",
    "ModelAdapter",
    "ModelFamily",
    "Placement",
    "Site",
    "__version__",
    "adapter_types",
    "attach",
    "detach",
    "get_adapter_type",
    "get_plugin_manager",
    "get_registry",
    "get_task",
    "hookimpl",
    "list_adapters",
    "load_adapter",
    "load_model",
    "merge",
    "model_families",
    "require_family",
    "save_adapter",
    "set_active",
    "tasks",
    "trainable_parameters",
    "unmerge",
]
