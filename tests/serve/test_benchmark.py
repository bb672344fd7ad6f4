"""The server benchmark runs end to end on a tiny model: both ways do the same greedy work, the concurrent one
in batches of several requests."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from .conftest import plugins

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve.py"


def test_tiny_run_reports_both_ways_and_the_ratio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("serve_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "serve.json"
    args = ["--tiny", "--clients", "4", "--requests", "2", "--max-tokens", "4", "--batch-wait-ms", "50"]
    with plugins():
        assert bench.main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    ways = result["ways"]
    assert ways["sequential"]["tokens"] == ways["concurrent"]["tokens"] > 0, "greedy: the same tokens both ways"
    assert ways["sequential"]["mean_batch"] == 1.0
    assert ways["concurrent"]["mean_batch"] > 1.0, "concurrent clients share batches"
    assert result["ratio"] == pytest.approx(ways["concurrent"]["tokens_per_s"] / ways["sequential"]["tokens_per_s"])
    assert "throughput, concurrent / sequential:" in capsys.readouterr().out
