"""Plugin discovery and the plugin manager.

The manager is built by :func:`get_plugin_manager`, never at import time. Discovery reads the entry points
of the group ``llm_adapters``; environment variables choose among them:

* ``LLM_ADAPTERS_PLUGINS=a,b``: load only these (distribution or entry-point names); empty: load none.
* ``LLM_ADAPTERS_DISABLE_PLUGINS=a,b``: load all but these.
* ``LLM_ADAPTERS_STRICT_PLUGINS=1``: a plugin that fails to load raises instead of being skipped.

A plugin that fails to import, implements a hook the specs do not define (a misspelling), or fails to
register is skipped with a warning and listed with its error by ``llm-adapters plugins``.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

GROUP = "llm_adapters"
ENV_ONLY = "LLM_ADAPTERS_PLUGINS"
ENV_DISABLE = "LLM_ADAPTERS_DISABLE_PLUGINS"
ENV_STRICT = "LLM_ADAPTERS_STRICT_PLUGINS"


@dataclass
class PluginRecord:
    """What ``llm-adapters plugins`` shows about one plugin."""

    name: str
    version: str | None
    entry_point: str | None
    hooks: list[str] = field(default_factory=list)
    adapters: list[str] = field(default_factory=list)
    model_families: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    model_sources: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    error: str | None = None
    plugin: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "entry_point": self.entry_point,
            "hooks": self.hooks,
            "adapters": self.adapters,
            "model_families": self.model_families,
            "tasks": self.tasks,
            "templates": self.templates,
            "model_sources": self.model_sources,
            "commands": self.commands,
            "error": self.error,
        }


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also keeps a :class:`PluginRecord` per plugin, failed ones included."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        #: the registry built from this manager's plugins (see :func:`llm_adapters.registry.get_registry`)
        self.registry: Any = None
        #: problems with the plugin environment variables (names that match no installed plugin)
        self.setting_problems: list[str] = []

    def add_plugin(
        self,
        plugin: Any,
        name: str,
        *,
        version: str | None = None,
        entry_point: str | None = None,
    ) -> PluginRecord:
        """Register ``plugin`` under ``name``; a misspelt hook makes it fail (recorded, and raised in strict
        mode)."""
        record = PluginRecord(name=name, version=version, entry_point=entry_point, plugin=plugin)
        self.records[name] = record
        try:
            self.register(plugin, name=name)
        except Exception as exc:  # pluggy rejects invalid signatures here
            self._fail(record, f"could not register: {exc}")
            return record
        unknown = [hc.name for hc in (self.get_hookcallers(plugin) or []) if not hc.has_spec()]
        if unknown:
            self.unregister(plugin)
            known = ", ".join(sorted(n for n in dir(self.hook) if not n.startswith("_")))
            self._fail(
                record,
                f"implements unknown hook(s) {', '.join(sorted(unknown))}; the hooks are: {known}",
            )
            return record
        record.hooks = sorted(hc.name for hc in (self.get_hookcallers(plugin) or []))
        return record

    def add_failed(self, name: str, error: str, *, version: str | None, entry_point: str | None) -> None:
        record = PluginRecord(name=name, version=version, entry_point=entry_point)
        self.records[name] = record
        self._fail(record, error)

    def _fail(self, record: PluginRecord, error: str) -> None:
        record.error = error
        if strict() and not _deferred:
            raise PluginError(f"plugin {record.name!r}: {error}")
        warnings.warn(f"llm-adapters: skipping plugin {record.name!r}: {error}", stacklevel=3)

    def fail_plugin(self, name: str, error: str) -> None:
        """Mark an already registered plugin as failed (e.g. its register hook raised) and unregister it."""
        record = self.records[name]
        if record.plugin is not None and self.is_registered(record.plugin):
            self.unregister(record.plugin)
        self._fail(record, error)

    def call_each(self, hook_name: str, kwargs_for: Callable[[str], dict[str, Any]]) -> None:
        """Call hook ``hook_name`` one working plugin at a time, through pluggy (so each plugin's hook wrappers
        apply), with the keyword arguments ``kwargs_for(plugin name)``: ``tryfirst`` implementations first,
        then the plugins in the order they were loaded (entry points sorted by distribution and name), then
        ``trylast`` ones; what is registered first keeps a contested name. A plugin whose call raises is
        marked failed (raised in strict mode) and the others go on."""
        caller = getattr(self.hook, hook_name)
        names = {id(r.plugin): name for name, r in self.records.items() if r.plugin is not None}
        loaded = {name: i for i, name in enumerate(self.records)}

        def rank(impl: Any) -> tuple[int, int]:  # tryfirst, then plugins in load order, then trylast
            return (0 if impl.tryfirst else 2 if impl.trylast else 1, loaded.get(names.get(id(impl.plugin), ""), 0))

        order = list(dict.fromkeys(impl.plugin for impl in sorted(caller.get_hookimpls(), key=rank)))
        for plugin in order:
            name = names.get(id(plugin))
            if name is None or self.records[name].error is not None:
                continue
            others = [p for p in order if p is not plugin]
            try:
                self.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs_for(name))
            except Exception as exc:
                self.fail_plugin(name, f"{type(exc).__name__} in {hook_name}: {exc}")


_deferred = 0


@contextmanager
def deferred_strict() -> Iterator[None]:
    """Within the block a failing plugin is recorded (and warned about) even in strict mode, so that the
    caller can list every failure first and then refuse (the CLI does this)."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1


def failures(pm: PluginManager) -> list[str]:
    """``plugin 'name': error`` for every plugin that failed to load or register, and each problem with the
    plugin environment variables."""
    return [*pm.setting_problems, *(f"plugin {name!r}: {r.error}" for name, r in pm.records.items() if r.error)]


def filtering() -> str:
    """A note naming the plugin variables that are set (they limit what is loaded), or ''."""
    parts = [f"{var}={os.environ[var]!r}" for var in (ENV_ONLY, ENV_DISABLE) if os.environ.get(var) is not None]
    return f" (note: {' and '.join(parts)} limits the plugins loaded)" if parts else ""


def strict() -> bool:
    return os.environ.get(ENV_STRICT, "").strip().lower() in {"1", "true", "yes", "on"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names_from_env(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {_normalise(part.strip()) for part in value.split(",") if part.strip()}


def load_entry_points(pm: PluginManager) -> None:
    """Discover entry points of the group ``llm_adapters`` and register the chosen ones."""
    only = _names_from_env(ENV_ONLY)
    disabled = _names_from_env(ENV_DISABLE) or set()
    found = sorted(md.entry_points(group=GROUP), key=lambda e: (e.dist.name if e.dist else "", e.name))
    known = {_normalise(ep.name) for ep in found} | {_normalise(ep.dist.name) for ep in found if ep.dist is not None}
    for var, named in ((ENV_ONLY, only or set()), (ENV_DISABLE, disabled)):
        unknown = sorted(named - known)
        if unknown:
            message = (
                f"{var} names {', '.join(repr(u) for u in unknown)}, which no installed plugin is called "
                f"(installed: {', '.join(sorted(known)) or 'none'})"
            )
            if strict() and not _deferred:
                raise PluginError(message)
            pm.setting_problems.append(message)
            warnings.warn(f"llm-adapters: {message}", stacklevel=2)
    per_dist: dict[str, int] = {}
    for ep in found:
        if ep.dist is not None:
            per_dist[ep.dist.name] = per_dist.get(ep.dist.name, 0) + 1
    for ep in found:
        dist = ep.dist.name if ep.dist is not None else ep.name
        version = ep.dist.version if ep.dist is not None else None
        names = {_normalise(dist), _normalise(ep.name)}
        if only is not None and not names & only:
            continue
        if names & disabled:
            continue
        key = dist if dist != ep.name else ep.name
        # one distribution may carry several entry points: each is its own plugin
        if per_dist.get(dist, 0) > 1:
            key = f"{dist}:{ep.name}"
        ep_text = f"{ep.name} = {ep.value}"
        try:
            plugin = ep.load()
        except Exception as exc:
            pm.add_failed(key, f"failed to import: {type(exc).__name__}: {exc}", version=version, entry_point=ep_text)
            continue
        pm.add_plugin(plugin, key, version=version, entry_point=ep_text)


_manager: PluginManager | None = None


def get_plugin_manager(*, refresh: bool = False) -> PluginManager:
    """The process-wide plugin manager, built on first use from the installed entry points."""
    global _manager
    if _manager is None or refresh:
        pm = PluginManager()
        load_entry_points(pm)
        set_plugin_manager(pm)
    assert _manager is not None
    return _manager


def set_plugin_manager(pm: PluginManager | None) -> None:
    """Install ``pm`` as the process-wide manager (tests use this for inline plugins). The registry belongs to
    the manager, so a new manager means a new registry."""
    global _manager
    _manager = pm
