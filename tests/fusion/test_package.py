"""The plugin is found through its entry point, and registering it imports no torch."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

LIGHT = """
import sys
from llm_adapters_fusion import plugin
registered = []
plugin.register_adapters(registered.append)
(fusion,) = registered
print(fusion.name, sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""


def test_installed_entry_point() -> None:
    (ep,) = [e for e in md.entry_points(group="llm_adapters") if e.name == "fusion"]
    assert ep.value == "llm_adapters_fusion.plugin"
    assert ep.dist is not None and ep.dist.name == "llm-adapters-fusion"


def test_registering_imports_no_torch() -> None:
    out = subprocess.run([sys.executable, "-c", LIGHT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fusion", "[]"]
