"""The train-step benchmark runs end to end on a tiny model and reports what it promises."""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_step.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_step_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_tiny_run_reports_floor_ratios_and_lora_vs_peft(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("peft")
    bench = _load()
    out = tmp_path / "result.json"
    variants = "floor,series,lora-r8,peft-lora-r8"
    rc = bench.main(["--tiny", "--steps", "2", "--warmup", "0", "--variants", variants, "--json", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    rows = {r["variant"]: r for r in result["rows"]}
    assert sorted(rows) == ["floor", "lora-r8", "peft-lora-r8"]  # series is not registered in these tests
    assert result["notes"] == ["series: skipped, the adapter type 'series' is not installed (llm-adapters-series)"]
    cfg = bench.TINY_LLAMA
    h, m = cfg["hidden_size"], cfg["intermediate_size"]
    kv = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    per_layer = 8 * ((h + h) + 2 * (h + kv) + 2 * (h + m))  # q; k, v; up, down
    assert rows["lora-r8"]["trainable"] == rows["peft-lora-r8"]["trainable"] == cfg["num_hidden_layers"] * per_layer
    assert rows["floor"]["trainable"] == 0 and rows["floor"]["ratio_to_floor"] == 1.0
    # ratios pair the steps of one round: the median of (ours / PEFT's) over rounds
    ours, theirs = rows["lora-r8"]["times_s"], rows["peft-lora-r8"]["times_s"]
    assert len(ours) == len(theirs) == 2
    ratio = statistics.median([a / b for a, b in zip(ours, theirs, strict=True)])
    assert result["lora_vs_peft"] == {"lora-r8 / peft-lora-r8": pytest.approx(ratio)}
    printed = capsys.readouterr().out
    assert "lora-r8 / peft-lora-r8: " in printed and "note: series: skipped" in printed


def test_unknown_variant_is_refused() -> None:
    bench = _load()
    with pytest.raises(SystemExit, match="unknown variant 'lora-r64'"):
        bench.main(["--tiny", "--variants", "floor,lora-r64"])
