"""The example is an installable distribution like any third-party plugin: found through its entry point,
and light to load (registering the adapter type imports no torch)."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import llm_adapters as la
from llm_adapters.registry import adapter_provider
from llm_adapters.testing import use_plugins

LIGHT = """
import sys
from llm_adapters_ia3 import plugin, __version__
registered = []
plugin.register_adapters(registered.append)
(ia3,) = registered
ia3.config_class.model_validate({"type": "ia3", "init": "normal"})
print(ia3.name, sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""


def test_installed_entry_point() -> None:
    (ep,) = [e for e in md.entry_points(group="llm_adapters") if e.name == "ia3"]
    assert ep.value == "llm_adapters_ia3.plugin"
    assert ep.dist is not None and ep.dist.name == "llm-adapters-ia3"


def test_discovered_through_the_entry_point() -> None:
    with use_plugins(entry_points=True):
        assert "ia3" in la.adapter_types()
        assert adapter_provider("ia3")[0] == "llm-adapters-ia3"


def test_registering_imports_no_torch() -> None:
    out = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ia3", "[]"]
