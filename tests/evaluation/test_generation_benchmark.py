"""The generation benchmark runs end to end on a tiny model and reports what it promises."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "generation.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generation_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_reports_both_ways_and_their_ratio(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bench = _load()
    out = tmp_path / "generation.json"
    rc = bench.main(["--tiny", "--n", "4", "--max-new-tokens", "3", "--json", str(out), "--min-ratio", "0"])
    assert rc == 0
    figures = json.loads(out.read_text())
    assert (figures["examples"], figures["batch_size"], figures["max_new_tokens"]) == (4, 4, 3)
    single, batched = figures["one_at_a_time"], figures["batched"]
    assert single["examples_per_second"] == pytest.approx(4 / single["seconds"], rel=1e-2)
    # EOS stopping is off: every prompt gets exactly 3 new tokens both ways
    assert single["new_tokens_per_second"] == pytest.approx(12 / single["seconds"], rel=1e-2)
    assert batched["new_tokens_per_second"] == pytest.approx(12 / batched["seconds"], rel=1e-2)
    assert figures["ratio"] == pytest.approx(single["seconds"] / batched["seconds"], rel=2e-2)
    printed = capsys.readouterr().out
    assert "examples/s" in printed and "x the examples per second" in printed
    assert bench.main(["--tiny", "--n", "2", "--max-new-tokens", "2", "--min-ratio", "1000"]) == 1


def test_problems_fall_back_to_generated_arithmetic(tmp_path: Path) -> None:
    bench = _load()
    texts, source = bench.problems(5, tmp_path)
    assert len(texts) == 5 and source.startswith("generated")
    assert texts[0] == "Tom has 7 apples and buys 2 more. How many apples does he have now?"
