"""The registry: adapter types, model families, tasks, prompt templates and model sources, keyed by name,
with the plugin that gave each.

Built lazily from the plugin manager (and cached on it) by calling the register-style hooks through pluggy
one plugin at a time (:meth:`~llm_adapters.plugins.PluginManager.call_each`), so that a plugin whose hook
raises or registers something invalid is skipped alone (and reported), and two plugins registering one name
are reported naming both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, FamilyError, PluginConflictError, PluginError
from .plugins import PluginManager, get_plugin_manager

NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass
class Entry:
    value: Any
    plugin: str
    version: str | None


@dataclass
class Registry:
    adapters: dict[str, Entry] = field(default_factory=dict)
    families: dict[str, Entry] = field(default_factory=dict)
    tasks: dict[str, Entry] = field(default_factory=dict)
    templates: dict[str, Entry] = field(default_factory=dict)
    model_sources: dict[str, Entry] = field(default_factory=dict)
    model_types: dict[str, str] = field(default_factory=dict)  # model_type -> family name
    conflicts: list[str] = field(default_factory=list)


def _named(hook: str, obj: Any, what: str) -> str:
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"{hook}: {what} name must be a lowercase identifier, got {name!r}")
    return name


def _check_adapter(obj: Any) -> tuple[str, Any]:
    from .adapter import AdapterConfig, AdapterType

    if not (isinstance(obj, type) and issubclass(obj, AdapterType)):
        raise PluginError(f"register_adapters: expected an AdapterType subclass, got {obj!r}")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"register_adapters: {obj.__name__}.name must be a lowercase identifier, got {name!r}")
    cfg = getattr(obj, "config_class", None)
    if not (isinstance(cfg, type) and issubclass(cfg, AdapterConfig)):
        raise PluginError(f"register_adapters: {obj.__name__}.config_class must subclass AdapterConfig")
    return name, obj


def _check_family(obj: Any) -> tuple[str, Any]:
    from .family import ModelFamily

    if not isinstance(obj, ModelFamily):
        raise PluginError(f"register_model_families: expected a ModelFamily instance, got {obj!r}")
    return _named("register_model_families", obj, "family"), obj


def _check_task(obj: Any) -> tuple[str, Any]:
    from .task import Task

    if isinstance(obj, type) and issubclass(obj, Task):
        obj = obj()
    if not isinstance(obj, Task):
        raise PluginError(f"register_tasks: expected a Task, got {obj!r}")
    return _named("register_tasks", obj, "task"), obj


def _check_template(obj: Any) -> tuple[str, Any]:
    from .template import Template

    if not isinstance(obj, Template):
        raise PluginError(f"register_templates: expected a Template instance, got {obj!r}")
    return _named("register_templates", obj, "template"), obj


def _check_source(obj: Any) -> tuple[str, Any]:
    from .source import ModelSource

    if not isinstance(obj, ModelSource):
        raise PluginError(f"register_model_sources: expected a ModelSource instance, got {obj!r}")
    return _named("register_model_sources", obj, "model source"), obj


#: hook name -> (registry table and plugin-record field, what it is called in messages, checker)
HOOKS: dict[str, tuple[str, str, Callable[[Any], tuple[str, Any]]]] = {
    "register_adapters": ("adapters", "adapter type", _check_adapter),
    "register_model_families": ("families", "model family", _check_family),
    "register_tasks": ("tasks", "task", _check_task),
    "register_templates": ("templates", "template", _check_template),
    "register_model_sources": ("model_sources", "model source", _check_source),
}
_RECORD_FIELD = {"families": "model_families"}


def build_registry(pm: PluginManager) -> Registry:
    reg = Registry()
    gathered: dict[str, dict[str, list[tuple[str, Any]]]] = {}  # plugin -> table -> [(key, value)]

    for hook_name, (table, _, check) in HOOKS.items():

        def kwargs_for(plugin: str, _table: str = table, _check: Callable = check) -> dict[str, Any]:
            into = gathered.setdefault(plugin, {}).setdefault(_table, [])
            return {"register": lambda obj: into.append(_check(obj))}

        pm.call_each(hook_name, kwargs_for)

    for plugin, tables in gathered.items():
        record = pm.records[plugin]
        if record.error is not None:  # failed part-way: none of what it registered counts
            continue
        for table, items in tables.items():
            what = next(w for t, w, _ in HOOKS.values() if t == table)
            entries: dict[str, Entry] = getattr(reg, table)
            for key, obj in items:
                if key in entries:
                    reg.conflicts.append(
                        f"{what} {key!r} is registered by both {entries[key].plugin!r} and {plugin!r}; uninstall "
                        f"one, or disable one with LLM_ADAPTERS_DISABLE_PLUGINS={plugin}"
                    )
                    continue
                entries[key] = Entry(obj, plugin, record.version)
                getattr(record, _RECORD_FIELD.get(table, table)).append(key)
    for fam_name, entry in reg.families.items():
        for mt in entry.value.model_types:
            if mt in reg.model_types and reg.model_types[mt] != fam_name:
                other = reg.families[reg.model_types[mt]].plugin
                reg.conflicts.append(
                    f"model_type {mt!r} is claimed by family {reg.model_types[mt]!r} ({other}) and "
                    f"family {fam_name!r} ({entry.plugin})"
                )
                continue
            reg.model_types[mt] = fam_name
    defaults = [e for e in reg.model_sources.values() if getattr(e.value, "default", False)]
    if len(defaults) > 1:
        reg.conflicts.append(
            "several model sources declare themselves the default model: "
            + ", ".join(f"{e.value.name!r} ({e.plugin})" for e in defaults)
        )
    return reg


def get_registry(*, allow_conflicts: bool = False) -> Registry:
    """The registry built from the current plugin manager. Raises on name conflicts unless asked not to."""
    pm = get_plugin_manager()
    if pm.registry is None:
        pm.registry = build_registry(pm)
    reg: Registry = pm.registry
    if reg.conflicts and not allow_conflicts:
        raise PluginConflictError("; ".join(reg.conflicts))
    return reg


def _unknown(what: str, name: str, table: dict[str, Entry], plural: str) -> ConfigError:
    from .plugins import filtering

    installed = ", ".join(sorted(table)) or "none"
    return ConfigError(
        f"unknown {what} {name!r}; installed {plural}: {installed}. {plural.capitalize()} come from plugin "
        f"packages: `llm-adapters plugins` lists what is installed{filtering()}"
    )


# ---- look-ups -------------------------------------------------------------------------------------
def adapter_types() -> dict[str, Any]:
    """Adapter type name -> :class:`~llm_adapters.adapter.AdapterType` subclass."""
    return {k: e.value for k, e in get_registry().adapters.items()}


def get_adapter_type(name: str) -> Any:
    reg = get_registry()
    if name in reg.adapters:
        return reg.adapters[name].value
    raise _unknown("adapter type", name, reg.adapters, "adapter types")


def adapter_provider(name: str) -> tuple[str, str | None]:
    """(plugin name, version) that registered adapter type ``name``."""
    e = get_registry().adapters[name]
    return e.plugin, e.version


def model_families() -> dict[str, Any]:
    """Family name -> :class:`~llm_adapters.family.ModelFamily`."""
    return {k: e.value for k, e in get_registry().families.items()}


def family_for_model_type(model_type: str | None) -> Any:
    reg = get_registry()
    fam = reg.model_types.get(model_type or "")
    return reg.families[fam].value if fam else None


def require_family(model_type: str | None) -> Any:
    fam = family_for_model_type(model_type)
    if fam is not None:
        return fam
    installed = ", ".join(f"{n} ({', '.join(f.model_types)})" for n, f in sorted(model_families().items())) or "none"
    raise FamilyError(
        f"no installed model family covers model_type {model_type!r} (installed families: {installed}). "
        "Either give explicit module names in target_modules (e.g. ['q_proj', 'v_proj']), which work "
        "without a family, or write a model-family plugin for it (see CONTRIBUTING.md, "
        "'Adding a model family')"
    )


def tasks() -> dict[str, Any]:
    """Task name -> :class:`~llm_adapters.task.Task` instance."""
    return {k: e.value for k, e in get_registry().tasks.items()}


def get_task(name: str) -> Any:
    reg = get_registry()
    key = name.strip().lower()
    if key in reg.tasks:
        return reg.tasks[key].value
    raise _unknown("task", name, reg.tasks, "tasks")


def templates() -> dict[str, Any]:
    """Template name -> :class:`~llm_adapters.template.Template`."""
    return {k: e.value for k, e in get_registry().templates.items()}


def model_sources() -> dict[str, Any]:
    """Source name -> :class:`~llm_adapters.source.ModelSource`."""
    return {k: e.value for k, e in get_registry().model_sources.items()}
