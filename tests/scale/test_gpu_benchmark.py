"""benchmarks/gpu.py: a clear exit without a GPU, and a dry run of every variant on the CPU with a tiny LLaMA
(the script's code paths, not its figures: the figures need a GPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from .conftest import HAS_BNB

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def _bench():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_so_and_exits(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        _bench().main(["--steps", "1"])
    assert "benchmarks/gpu.py measures training on a CUDA GPU, but none is visible here" in str(exit_.value.code)


def test_unknown_variants_are_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        _bench().main(["--variants", "ours-8bit"])
    assert exit_.value.code == 2 and "unknown variant(s) ours-8bit" in capsys.readouterr().err


@pytest.mark.slow
def test_a_dry_run_on_the_cpu_measures_every_variant(monkeypatch, tmp_path, capsys) -> None:
    bench = _bench()
    monkeypatch.setattr(bench, "DEVICE", "cpu")
    tiny = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2}
    monkeypatch.setattr(bench, "LLAMA_1B", {**bench.LLAMA_1B, **tiny, "vocab_size": 256})
    variants = ["ours-bf16", "peft-bf16"] + (["ours-4bit", "peft-4bit"] if HAS_BNB else [])
    out = tmp_path / "gpu.json"
    args = ["--variants", ",".join(variants), "--layers", "2", "--batch", "2", "--seq", "16", "--steps", "1"]
    assert bench.main([*args, "--warmup", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["variant"] for r in rows] == variants
    by = {r["variant"]: r for r in rows}
    for precision in ("bf16", "4bit") if HAS_BNB else ("bf16",):
        ours, peft = by[f"ours-{precision}"], by[f"peft-{precision}"]
        # the same adapter (r=16 on every linear layer): as many trainable parameters, all float32
        assert (
            ours["trainable_parameters"]
            == peft["trainable_parameters"]
            == 2 * 16 * ((64 + 64) + (64 + 32) * 2 + (64 + 64) + (64 + 128) * 3)
        )
        assert ours["adapter_dtypes"] == peft["adapter_dtypes"] == ["float32"]
        assert ours["first_loss"] == pytest.approx(peft["first_loss"], abs=1e-3)  # both start at the base model
    assert "ours / PEFT  time" in capsys.readouterr().out
