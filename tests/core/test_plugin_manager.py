"""Discovery through (faked) entry points, the environment switches, failures and conflicts."""

from __future__ import annotations

import types
import warnings
from dataclasses import dataclass
from typing import Any

import pytest

from llm_adapters import hookimpl, plugins, registry
from llm_adapters.errors import PluginConflictError, PluginError

from . import probe_plugin


@dataclass
class FakeDist:
    name: str
    version: str


class FakeEntryPoint:
    def __init__(self, name: str, dist: str, obj: Any = None, error: Exception | None = None) -> None:
        self.name, self.value = name, f"{dist.replace('-', '_')}:plugin"
        self.dist = FakeDist(dist, "1.2.3")
        self._obj, self._error = obj, error

    def load(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._obj


def _module(name: str, **hooks: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in hooks.items():
        setattr(mod, k, hookimpl(v))
    return mod


def _adapters(*classes: Any) -> Any:
    def register_adapters(register):  # type: ignore[no-untyped-def]
        for c in classes:
            register(c)

    return register_adapters


class OtherProbe(probe_plugin.Probe):
    name = "other"


@pytest.fixture
def fake_eps(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    eps: list[FakeEntryPoint] = []
    monkeypatch.setattr(plugins.md, "entry_points", lambda group: list(eps) if group == plugins.GROUP else [])
    for var in (plugins.ENV_ONLY, plugins.ENV_DISABLE, plugins.ENV_STRICT):
        monkeypatch.delenv(var, raising=False)
    yield eps
    plugins.set_plugin_manager(None)


def _build() -> plugins.PluginManager:
    return plugins.get_plugin_manager(refresh=True)


def test_entry_points_are_discovered_and_recorded(fake_eps: list) -> None:
    fake_eps.append(FakeEntryPoint("probe", "llm-adapters-probe", probe_plugin))
    pm = _build()
    rec = pm.records["llm-adapters-probe"]
    assert (rec.version, rec.entry_point, rec.error) == ("1.2.3", "probe = llm_adapters_probe:plugin", None)
    assert rec.hooks == ["register_adapters", "register_model_families"]
    registry.get_registry()
    assert rec.adapters == ["probe"] and rec.model_families == ["test-llama", "test-gpt2"]


def test_several_entry_points_of_one_distribution_are_separate_plugins(fake_eps: list) -> None:
    fake_eps.append(FakeEntryPoint("a", "multi", _module("a", register_adapters=_adapters(probe_plugin.Probe))))
    fake_eps.append(FakeEntryPoint("b", "multi", _module("b", register_adapters=_adapters(OtherProbe))))
    pm = _build()
    assert sorted(pm.records) == ["multi:a", "multi:b"]


@pytest.mark.parametrize(
    ("var", "value", "loaded"),
    [
        ("LLM_ADAPTERS_PLUGINS", "", []),
        ("LLM_ADAPTERS_PLUGINS", "first-dist", ["first-dist"]),
        ("LLM_ADAPTERS_PLUGINS", "second", ["second-dist"]),  # an entry-point name
        ("LLM_ADAPTERS_PLUGINS", "first_dist, second", ["first-dist", "second-dist"]),
        ("LLM_ADAPTERS_DISABLE_PLUGINS", "first-dist", ["second-dist"]),
        ("LLM_ADAPTERS_DISABLE_PLUGINS", "second", ["first-dist"]),
        ("LLM_ADAPTERS_DISABLE_PLUGINS", "", ["first-dist", "second-dist"]),
    ],
)
def test_allow_and_block_lists(
    fake_eps: list, monkeypatch: pytest.MonkeyPatch, var: str, value: str, loaded: list
) -> None:
    fake_eps.append(FakeEntryPoint("first", "first-dist", _module("f", register_adapters=_adapters(OtherProbe))))
    fake_eps.append(FakeEntryPoint("second", "second-dist", probe_plugin))
    monkeypatch.setenv(var, value)
    assert sorted(_build().records) == loaded


def test_import_failure_is_skipped_with_warning_and_listed(fake_eps: list) -> None:
    fake_eps.append(FakeEntryPoint("broken", "broken-dist", error=ImportError("No module named 'nope'")))
    fake_eps.append(FakeEntryPoint("probe", "probe-dist", probe_plugin))
    with pytest.warns(UserWarning, match="skipping plugin 'broken-dist': failed to import: ImportError"):
        pm = _build()
    assert pm.records["broken-dist"].error == "failed to import: ImportError: No module named 'nope'"
    assert "probe" in registry.adapter_types()


def test_register_failure_is_skipped_and_listed(fake_eps: list) -> None:
    def register_adapters(register):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    fake_eps.append(FakeEntryPoint("bad", "bad-dist", _module("bad", register_adapters=register_adapters)))
    fake_eps.append(FakeEntryPoint("probe", "probe-dist", probe_plugin))
    pm = _build()
    with pytest.warns(UserWarning, match="RuntimeError in register_adapters: boom"):
        reg = registry.get_registry()
    assert "probe" in reg.adapters
    assert pm.records["bad-dist"].error == "RuntimeError in register_adapters: boom"


def test_invalid_registration_is_reported(fake_eps: list) -> None:
    fake_eps.append(FakeEntryPoint("bad", "bad-dist", _module("bad", register_adapters=_adapters(object))))
    pm = _build()
    with pytest.warns(UserWarning):
        registry.get_registry()
    assert "expected an AdapterType subclass" in pm.records["bad-dist"].error


def test_strict_mode_raises(fake_eps: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ADAPTERS_STRICT_PLUGINS", "1")
    fake_eps.append(FakeEntryPoint("broken", "broken-dist", error=ImportError("nope")))
    with pytest.raises(PluginError, match="plugin 'broken-dist': failed to import: ImportError: nope"):
        _build()


def test_misspelt_hook_is_an_error_not_silence(fake_eps: list) -> None:
    def register_adaptors(register):  # type: ignore[no-untyped-def]
        pass

    fake_eps.append(FakeEntryPoint("typo", "typo-dist", _module("typo", register_adaptors=register_adaptors)))
    with pytest.warns(UserWarning, match="implements unknown hook"):
        pm = _build()
    assert pm.records["typo-dist"].error.startswith("implements unknown hook(s) register_adaptors; the hooks are:")
    assert not pm.is_registered(pm.records["typo-dist"].plugin)


def test_duplicate_names_name_both_distributions(fake_eps: list) -> None:
    fake_eps.append(FakeEntryPoint("one", "dist-one", _module("one", register_adapters=_adapters(OtherProbe))))
    fake_eps.append(FakeEntryPoint("two", "dist-two", _module("two", register_adapters=_adapters(OtherProbe))))
    _build()
    with pytest.raises(PluginConflictError) as exc:
        registry.get_registry()
    assert str(exc.value) == (
        "adapter type 'other' is registered by both 'dist-one' and 'dist-two'; uninstall one, or disable one "
        "with LLM_ADAPTERS_DISABLE_PLUGINS=dist-two"
    )


def test_duplicate_model_type_is_a_conflict(fake_eps: list) -> None:
    import dataclasses

    clash = dataclasses.replace(probe_plugin.LLAMA, name="another-llama")

    def register_model_families(register):  # type: ignore[no-untyped-def]
        register(clash)

    fake_eps.append(FakeEntryPoint("one", "dist-one", probe_plugin))
    fake_eps.append(FakeEntryPoint("two", "dist-two", _module("two", register_model_families=register_model_families)))
    _build()
    with pytest.raises(
        PluginConflictError, match="model_type 'llama' is claimed by family 'test-llama' \\(dist-one\\)"
    ):
        registry.get_registry()


def test_manager_is_built_lazily_not_at_import(fake_eps: list) -> None:
    plugins.set_plugin_manager(None)
    assert plugins._manager is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm = plugins.get_plugin_manager()
    assert plugins.get_plugin_manager() is pm
