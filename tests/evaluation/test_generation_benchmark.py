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


def test_evaluate_batching_benchmark_runs_three_ways_on_multiarith(tmp_path: Path) -> None:
    from .conftest import shared_or_skip

    data = shared_or_skip()
    spec = importlib.util.spec_from_file_location("evaluate_batching", SCRIPT.with_name("evaluate_batching.py"))
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "batching.json"
    args = ["--tiny", "--n", "4", "--max-new-tokens", "3", "--batch-size", "2", "--data-dir", str(data)]
    assert bench.main([*args, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert (figures["examples"], figures["batch_size"], figures["max_new_tokens"]) == (4, 2, 3)
    ways = [figures[k] for k in ("one_at_a_time", "batched", "hf_generate_batched")]
    assert figures["same_answers"] is True and len({w["new_tokens"] for w in ways}) == 1
    assert all(w["examples_per_second"] == pytest.approx(4 / w["seconds"], rel=1e-2) for w in ways)
    ratio = figures["one_at_a_time"]["seconds"] / figures["batched"]["seconds"]
    assert figures["ratio_batched_over_single"] == pytest.approx(ratio, rel=2e-2)
    assert figures["target_met"] is (figures["ratio_batched_over_single"] >= 4)
    assert bench.main([*args, "--min-ratio", "1000"]) == 1
