"""The distribution: its entry point, a light entry module (``serve --help`` imports no torch), and a wheel that
carries the playground page."""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llm_adapters_serve.server import playground_page

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from llm_adapters.cli import main
try:
    main(["serve", "--help"])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(m for m in ("torch", "transformers") if m in sys.modules)))
"""


def test_installed_entry_point() -> None:
    (ep,) = [e for e in md.entry_points(group="llm_adapters") if e.name == "serve"]
    assert ep.value == "llm_adapters_serve"
    assert ep.dist is not None and ep.dist.name == "llm-adapters-serve"
    requires = " ".join(md.requires("llm-adapters-serve") or [])
    for dist in ("llm-adapters-core", "llm-adapters-eval", "llm-adapters-templates"):
        assert dist in requires


def test_serve_help_imports_no_torch() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--adapter-path" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_page_is_package_data() -> None:
    page = playground_page().decode()
    assert page.startswith("<!doctype html>") and "getReader()" in page


@pytest.mark.slow
def test_the_wheel_carries_the_page(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
         str(REPO / "plugins" / "llm_adapters_serve")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("llm_adapters_serve-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "llm_adapters_serve/static/index.html" in names
    assert "llm_adapters_serve/cli.py" in names
