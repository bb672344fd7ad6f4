"""Lazy package exports (PEP 562), so that importing a package (the kernel, or a plugin's entry point)
costs nothing until one of its names is used.

A package's ``__init__`` writes::

    from llm_adapters.lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, {"LoRA": ".adapter", "LoRAConfig": ".config"})

and ``package.LoRA`` imports ``package.adapter`` on first access. Keep eager imports for type checkers under
``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name in ``exports`` is read from its module (a
    relative module name such as ``".adapter"``) on first access and then cached in the package."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            # a submodule not imported yet (``llm_adapters.engine``): import it, as an eager package would have
            if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
