"""``llm-adapters plugins`` through the real installed CLI, in a subprocess."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLI = shutil.which("llm-adapters", path=str(Path(sys.executable).parent)) or "llm-adapters"
KEYS = {"name", "version", "entry_point", "hooks", "adapters", "model_families", "tasks", "error"}


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ADAPTERS_")}
    full_env.update(env)
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=full_env, timeout=300)


def test_json_lists_every_installed_entry_point() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(KEYS <= set(row) for row in rows)
    listed = {row["entry_point"] for row in rows}
    expected = {f"{ep.name} = {ep.value}" for ep in md.entry_points(group="llm_adapters")}
    assert listed == expected
    assert all(row["error"] is None for row in rows), [r for r in rows if r["error"]]


def test_empty_allow_list_loads_nothing() -> None:
    result = run_cli("plugins", "--json", LLM_ADAPTERS_PLUGINS="")
    assert result.returncode == 0 and json.loads(result.stdout) == []
    text = run_cli("plugins", LLM_ADAPTERS_PLUGINS="")
    assert text.stdout.startswith("No plugins installed (or none allowed by LLM_ADAPTERS_PLUGINS).")


@pytest.mark.skipif(not list(md.entry_points(group="llm_adapters")), reason="no plugin is installed")
def test_table_names_each_plugin_and_what_it_registered() -> None:
    rows = json.loads(run_cli("plugins", "--json").stdout)
    text = run_cli("plugins").stdout
    for row in rows:
        assert row["name"] in text
        for name in row["adapters"] + row["tasks"]:
            assert name in text
        for fam in row["model_families"]:
            assert f"family      : {fam} (" in text


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.strip().endswith("0.1.0")
    help_text = run_cli("--help").stdout
    assert "plugins" in help_text
