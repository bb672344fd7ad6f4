"""``llm-adapters plugins`` builds the registry (every plugin's register hooks run) without importing torch,
transformers, datasets or accelerate: adapter types, their configs and every other registered object are
torch-free at import; the torch modules they build are imported only when an adapter is created."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "datasets", "accelerate")
CLI = shutil.which("llm-adapters", path=str(Path(sys.executable).parent)) or "llm-adapters"

#: runs the console script's main() as `llm-adapters plugins --json`, then reports the heavy modules loaded
WRAPPER = f"""
import sys
sys.argv = ["llm-adapters", "plugins", "--json"]
from llm_adapters.cli import main
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LLM_ADAPTERS_")}


pytestmark = pytest.mark.skipif(
    not list(md.entry_points(group="llm_adapters")), reason="no plugin is installed: nothing is registered"
)


def test_listing_plugins_imports_no_heavy_module() -> None:
    out = subprocess.run([sys.executable, "-c", WRAPPER], capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert all(row["error"] is None for row in rows), [r for r in rows if r["error"]]
    loaded = out.stderr.strip().splitlines()[-1]
    assert loaded == "[]", f"`llm-adapters plugins` imported {loaded}"


def test_the_console_script_imports_no_heavy_module() -> None:
    # the installed command itself, with Python reporting every import it makes on stderr
    out = subprocess.run(
        [CLI, "plugins", "--json"],
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPROFILEIMPORTTIME": "1"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert imported, "no import report on stderr"
    assert sorted(imported & set(HEAVY)) == []
