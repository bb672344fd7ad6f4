"""The multi-adapter benchmark runs end to end on a tiny model and reports each way against one adapter."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "multi_adapter.py"


def test_tiny_run_reports_three_ways_and_their_ratios(tmp_path: Path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("multi_adapter_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "m.json"
    assert bench.main(["--tiny", "--rounds", "1", "--rows", "8", "--tokens", "16", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["way"] for r in rows] == ["one adapter", "one adapter, routed", "four adapters, routed"]
    assert rows[0]["ratio"] == 1.0 and all(r["seconds"] > 0 for r in rows)
    assert "four adapters in one batch:" in capsys.readouterr().out
