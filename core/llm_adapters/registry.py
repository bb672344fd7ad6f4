"""The registry: adapter types, model families and tasks, keyed by name, with the plugin that gave each.

Built lazily from the plugin manager by calling the register-style hooks one plugin at a time, so that a
plugin whose hook raises or registers something invalid is skipped alone (and reported), and two plugins
registering one name are reported naming both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .adapter import AdapterConfig, AdapterType
from .errors import ConfigError, FamilyError, PluginConflictError, PluginError
from .family import ModelFamily
from .plugins import PluginManager, get_plugin_manager
from .tasks import Task

NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")

#: The distributions of this project that provide the well-known types, for "pip install ..." hints.
KNOWN_PROVIDERS = {
    "lora": "llm-adapters-lora",
    "series": "llm-adapters-series",
    "parallel": "llm-adapters-parallel",
    "prefix": "llm-adapters-prompt",
    "prompt": "llm-adapters-prompt",
    "ptuning": "llm-adapters-prompt",
}


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
    model_types: dict[str, str] = field(default_factory=dict)  # model_type -> family name
    conflicts: list[str] = field(default_factory=list)


def _check_adapter(obj: Any) -> str:
    if not (isinstance(obj, type) and issubclass(obj, AdapterType)):
        raise PluginError(f"register_adapters: expected an AdapterType subclass, got {obj!r}")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"register_adapters: {obj.__name__}.name must be a lowercase identifier, got {name!r}")
    cfg = getattr(obj, "config_class", None)
    if not (isinstance(cfg, type) and issubclass(cfg, AdapterConfig)):
        raise PluginError(f"register_adapters: {obj.__name__}.config_class must subclass AdapterConfig")
    return name


def _check_family(obj: Any) -> str:
    if not isinstance(obj, ModelFamily):
        raise PluginError(f"register_model_families: expected a ModelFamily instance, got {obj!r}")
    if not NAME_RE.match(obj.name):
        raise PluginError(f"register_model_families: family name must be a lowercase identifier, got {obj.name!r}")
    return obj.name


def _check_task(obj: Any) -> str:
    if isinstance(obj, type) and issubclass(obj, Task):
        obj = obj()
    if not isinstance(obj, Task):
        raise PluginError(f"register_tasks: expected a Task, got {obj!r}")
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"register_tasks: task name must be a lowercase identifier, got {name!r}")
    return name


_HOOKS: dict[str, tuple[str, Callable[[Any], str], str]] = {
    # hook name -> (registry field, checker, record field)
    "register_adapters": ("adapters", _check_adapter, "adapters"),
    "register_model_families": ("families", _check_family, "model_families"),
    "register_tasks": ("tasks", _check_task, "tasks"),
}


def build_registry(pm: PluginManager) -> Registry:
    reg = Registry()
    for name, record in pm.records.items():
        if record.error is not None or record.plugin is None:
            continue
        gathered: dict[str, list[tuple[str, Any]]] = {f: [] for f, _, _ in _HOOKS.values()}
        try:
            for hook_name, (fld, check, _) in _HOOKS.items():
                impls = [i for i in getattr(pm.hook, hook_name).get_hookimpls() if i.plugin is record.plugin]
                for impl in impls:

                    def register(
                        obj: Any, _fld: str = fld, _check: Callable[[Any], str] = check, _into: dict = gathered
                    ) -> None:
                        if _fld == "tasks" and isinstance(obj, type):
                            obj = obj()
                        _into[_fld].append((_check(obj), obj))

                    impl.function(*[register for _ in impl.argnames])
        except Exception as exc:
            pm.fail_plugin(name, f"{type(exc).__name__} while registering: {exc}")
            continue
        for fld, _, rec_fld in _HOOKS.values():
            table: dict[str, Entry] = getattr(reg, fld)
            for key, obj in gathered[fld]:
                if key in table:
                    msg = (
                        f"{fld[:-1].replace('adapter', 'adapter type')} {key!r} is registered by both "
                        f"{table[key].plugin!r} and {name!r}; uninstall one, or disable one with "
                        f"LLM_ADAPTERS_DISABLE_PLUGINS={name}"
                    )
                    reg.conflicts.append(msg)
                    continue
                table[key] = Entry(obj, name, record.version)
                getattr(record, rec_fld).append(key)
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
    return reg


_registry: Registry | None = None


def reset() -> None:
    global _registry
    _registry = None


def get_registry(*, allow_conflicts: bool = False) -> Registry:
    """The registry built from the current plugin manager. Raises on name conflicts unless asked not to."""
    global _registry
    if _registry is None:
        _registry = build_registry(get_plugin_manager())
    if _registry.conflicts and not allow_conflicts:
        raise PluginConflictError("; ".join(_registry.conflicts))
    return _registry


# ---- look-ups -------------------------------------------------------------------------------------
def adapter_types() -> dict[str, type[AdapterType]]:
    return {k: e.value for k, e in get_registry().adapters.items()}


def get_adapter_type(name: str) -> type[AdapterType]:
    reg = get_registry()
    if name in reg.adapters:
        return reg.adapters[name].value
    installed = ", ".join(sorted(reg.adapters)) or "none"
    hint = (
        f"; it is provided by the package {KNOWN_PROVIDERS[name]!r}: pip install {KNOWN_PROVIDERS[name]}"
        if name in KNOWN_PROVIDERS
        else "; adapter types come from plugin packages (see `llm-adapters plugins`)"
    )
    raise ConfigError(f"unknown adapter type {name!r}; installed types: {installed}{hint}")


def adapter_provider(name: str) -> tuple[str, str | None]:
    """(plugin name, version) that registered adapter type ``name``."""
    e = get_registry().adapters[name]
    return e.plugin, e.version


def model_families() -> dict[str, ModelFamily]:
    return {k: e.value for k, e in get_registry().families.items()}


def family_for_model_type(model_type: str | None) -> ModelFamily | None:
    reg = get_registry()
    fam = reg.model_types.get(model_type or "")
    return reg.families[fam].value if fam else None


def require_family(model_type: str | None) -> ModelFamily:
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


def tasks() -> dict[str, Task]:
    return {k: e.value for k, e in get_registry().tasks.items()}


def get_task(name: str) -> Task:
    table = tasks()
    key = name.strip().lower()
    if key in table:
        return table[key]
    raise ConfigError(
        f"unknown task {name!r}; installed tasks: {', '.join(sorted(table)) or 'none'} "
        "(tasks come from plugin packages such as llm-adapters-tasks)"
    )
