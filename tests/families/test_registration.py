"""Each family is its own entry point: listed with its model types, and disabled alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_adapters import get_plugin_manager, get_registry, model_families
from llm_adapters.listing import command as plugins_command
from llm_adapters.testing import use_plugins

from .helpers import EXPECTED_FAMILIES

DIST = "llm-adapters-families"


def test_every_family_is_registered_with_its_model_types() -> None:
    families = model_families()
    assert {n: f.model_types for n, f in families.items()} == EXPECTED_FAMILIES


@pytest.mark.parametrize("name", sorted(EXPECTED_FAMILIES))
def test_family_comes_from_its_own_entry_point(name: str) -> None:
    reg = get_registry()
    assert reg.families[name].plugin == f"{DIST}:{name}"
    record = get_plugin_manager().records[f"{DIST}:{name}"].as_dict()
    assert record["model_families"] == [name]
    assert record["entry_point"] == f"{name} = llm_adapters_families.{name}"
    assert record["error"] is None


def test_model_types_are_claimed_once() -> None:
    reg = get_registry()
    assert reg.conflicts == []
    claimed = [mt for types in EXPECTED_FAMILIES.values() for mt in types]
    assert len(claimed) == len(set(claimed))
    assert reg.model_types == {mt: fam for fam, types in EXPECTED_FAMILIES.items() for mt in types}


def test_plugins_command_lists_every_family_with_its_model_types() -> None:
    """Through the installed CLI, as a user runs it."""
    env = {**os.environ, "LLM_ADAPTERS_PLUGINS": DIST}
    exe = Path(sys.executable).with_name("llm-adapters")
    result = subprocess.run([str(exe), "plugins", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    listed = {fam: tuple(types) for row in rows for fam, types in row["model_types"].items()}
    assert listed == EXPECTED_FAMILIES
    assert {row["name"] for row in rows} == {f"{DIST}:{name}" for name in EXPECTED_FAMILIES}


def test_plugins_table_shows_model_types() -> None:
    text = CliRunner().invoke(plugins_command, []).output
    assert "family      : llama (llama, mistral, qwen2, qwen3, gemma, granite, helium, olmo, smollm3, stablelm)" in text
    assert "family      : gpt2 (gpt2)" in text


def test_one_family_can_be_disabled_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ADAPTERS_DISABLE_PLUGINS", "gpt2")
    with use_plugins(entry_points=True):
        assert set(model_families()) == set(EXPECTED_FAMILIES) - {"gpt2"}


def test_one_family_can_be_allowed_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ADAPTERS_PLUGINS", "bloom")
    with use_plugins(entry_points=True):
        assert set(model_families()) == {"bloom"}
