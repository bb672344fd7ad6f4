"""Swapping the process-wide plugin manager for tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import plugins as _plugins


@contextmanager
def use_plugins(*inline: Any, entry_points: bool = False) -> Iterator[_plugins.PluginManager]:
    """Within the block, the plugin manager holds exactly ``inline`` (objects or modules with
    ``@hookimpl`` functions), plus the installed entry points when ``entry_points=True``."""
    previous = _plugins._manager
    pm = _plugins.PluginManager()
    if entry_points:
        _plugins.load_entry_points(pm)
    for i, plugin in enumerate(inline):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{i}"
        pm.add_plugin(plugin, name, version="0.0.0", entry_point=None)
    _plugins.set_plugin_manager(pm)
    try:
        yield pm
    finally:
        _plugins.set_plugin_manager(previous)
