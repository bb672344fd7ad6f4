"""llm-adapters: parameter-efficient fine-tuning of large language models with adapters.

The kernel defines the plugin boundary (:mod:`llm_adapters.hookspecs`), discovers plugins through entry
points, and owns everything adapters share: placing them, switching, merging, saving and loading. Adapter
types, model families, tasks, prompt templates, model sources and most CLI commands all come from plugins.

Importing the package is cheap: the names below are loaded on first use (PEP 562), so ``import
llm_adapters`` imports neither torch nor transformers, and a plugin's ``from llm_adapters import hookimpl``
costs only pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "AdapterConfig": ".adapter",
    "AdapterLayer": ".layers",
    "AdapterType": ".adapter",
    "ModelAdapter": ".layers",
    "Placement": ".adapter",
    "Site": ".adapter",
    "AttentionDims": ".family",
    "FusedProjection": ".family",
    "ModelFamily": ".family",
    "ModelSource": ".source",
    "Task": ".task",
    "Template": ".template",
    "AdapterInfo": ".engine",
    "attach": ".engine",
    "combine": ".engine",
    "detach": ".engine",
    "disabled": ".engine",
    "using": ".engine",
    "list_adapters": ".engine",
    "merge": ".engine",
    "set_active": ".engine",
    "trainable_parameters": ".engine",
    "unmerge": ".engine",
    "load_adapter": ".files",
    "save_adapter": ".files",
    "load_model": ".models",
    "hookimpl": ".hookspecs",
    "get_plugin_manager": ".plugins",
    "adapter_types": ".registry",
    "get_adapter_type": ".registry",
    "get_registry": ".registry",
    "get_task": ".registry",
    "model_families": ".registry",
    "require_family": ".registry",
    "tasks": ".registry",
    "get_template": ".template",
}

__all__ = ["__version__", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .adapter import AdapterConfig, AdapterType, Placement, Site
    from .engine import (
        AdapterInfo,
        attach,
        combine,
        detach,
        disabled,
        list_adapters,
        merge,
        set_active,
        trainable_parameters,
        unmerge,
        using,
    )
    from .family import AttentionDims, FusedProjection, ModelFamily
    from .files import load_adapter, save_adapter
    from .hookspecs import hookimpl
    from .layers import AdapterLayer, ModelAdapter
    from .models import load_model
    from .plugins import get_plugin_manager
    from .registry import (
        adapter_types,
        get_adapter_type,
        get_registry,
        get_task,
        model_families,
        require_family,
        tasks,
    )
    from .source import ModelSource
    from .task import Task
    from .template import Template, get_template
