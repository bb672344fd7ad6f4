"""The command line at scale: ``train --quantize 4bit`` writes an adapter that loads onto (and exports merged
into) the full-precision base; ``--quantize`` and ``--device-map`` on evaluate and generate; bad values, a
missing bitsandbytes and ``--device-map`` without GPUs are one-line errors before any data or weight is read."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

import llm_adapters as la
import llm_adapters.models as models_module
from llm_adapters.cli import build_cli
from llm_adapters.engine import adapter_tensors
from llm_adapters.errors import ModelLoadError
from tests.training.helpers import records, write_json

from .conftest import needs_bnb

IDS = torch.tensor([[5, 17, 33, 60, 12, 9, 41, 7]])


def _train_args(model: Path, data: Path, out: Path) -> list[str]:
    return [
        "train",
        "--model",
        str(model),
        "--adapter",
        "lora",
        "-o",
        "target_modules=attn.q,attn.v,mlp.down",
        "--data",
        str(data),
        "--output",
        str(out),
        "--max-steps",
        "6",
        "--batch-size",
        "4",
        "--micro-batch-size",
        "4",
        "--warmup-steps",
        "0",
        "--lr",
        "1e-2",
        "--cutoff-len",
        "24",
        "--train-on-inputs",
        "--report-to",
        "none",
        "--no-progress",
    ]


@pytest.mark.slow
@needs_bnb
def test_train_quantize_4bit_then_load_and_export_on_the_full_precision_base(llama_dir, tmp_path) -> None:
    data = write_json(tmp_path / "data.json", records(24))
    out = tmp_path / "qlora"
    r = CliRunner().invoke(build_cli(), [*_train_args(llama_dir, data, out), "--quantize", "4bit"])
    assert r.exit_code == 0, r.output
    assert "4bit base computing in float32; adapter weights float32" in r.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["quantize"] == "4bit" and metrics["gradient_checkpointing"] is True
    assert json.loads((out / "train_config.json").read_text())["quantize"] == "4bit"

    full, _ = la.load_model(str(llama_dir))  # the full-precision base takes the adapter (same identity)
    la.load_adapter(full, out)
    with torch.no_grad():
        expected = full(IDS).logits
        with la.disabled(full):
            assert not torch.allclose(full(IDS).logits, expected)  # the adapter does something
    assert all(t.dtype == torch.float32 for t in adapter_tensors(full, "default").values())

    # export merges into the full-precision base it loads (the QLoRA convention)
    r = CliRunner().invoke(
        build_cli(), ["export", "--model", str(llama_dir), "--adapter-path", str(out), "--output", str(tmp_path / "m")]
    )
    assert r.exit_code == 0, r.output
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    with torch.no_grad():
        torch.testing.assert_close(merged(IDS).logits, expected, rtol=1e-5, atol=1e-5)


def test_bad_quantize_values_are_refused(llama_dir, tmp_path) -> None:
    data = write_json(tmp_path / "data.json", records(4))
    cli = build_cli()
    r = CliRunner().invoke(cli, [*_train_args(llama_dir, data, tmp_path / "o"), "--quantize", "3bit"])
    assert r.exit_code == 2 and "Invalid value for '--quantize': '3bit' is not one of '8bit', '4bit'." in r.output
    (tmp_path / "run.yaml").write_text(f"data: {data}\noutput: {tmp_path / 'o'}\nquantize: 3bit\n")
    r = CliRunner().invoke(cli, ["train", str(tmp_path / "run.yaml")])
    assert r.exit_code == 1 and "quantize" in r.output and "'8bit' or '4bit'" in r.output, r.output
    for command in (["generate", "hi"], ["evaluate", "--task", "gsm8k", "--output", str(tmp_path / "e")]):
        r = CliRunner().invoke(cli, [*command, "--model", str(llama_dir), "--quantize", "3bit"])
        assert r.exit_code == 2 and "Invalid value for '--quantize': '3bit'" in r.output, r.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "e").exists()


def test_quantize_without_bitsandbytes_fails_before_the_data_is_read(llama_dir, tmp_path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name))
    missing = tmp_path / "not-there.json"
    r = CliRunner().invoke(build_cli(), [*_train_args(llama_dir, missing, tmp_path / "o"), "--quantize", "8bit"])
    assert r.exit_code == 1
    assert "Error: quantize='8bit' needs bitsandbytes, which is not installed: pip install 'llm-adapters[quant]'" in (
        r.output
    )


def test_device_map_without_gpus_fails_before_the_data_is_read(llama_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    missing = tmp_path / "not-there.json"
    cli = build_cli()
    r = CliRunner().invoke(cli, [*_train_args(llama_dir, missing, tmp_path / "o"), "--device-map", "auto"])
    assert r.exit_code == 1, r.output
    assert "Error: device_map='auto' spreads the model over GPUs, but no GPU is visible" in r.output
    r = CliRunner().invoke(cli, ["generate", "hi", "--model", str(llama_dir), "--device-map", "auto"])
    assert isinstance(r.exception, ModelLoadError) and "no GPU is visible" in str(r.exception)  # main() prints it


@needs_bnb
def test_generate_on_a_4bit_base_with_an_adapter(llama_dir, tmp_path) -> None:
    model, _ = la.load_model(str(llama_dir))
    la.attach(model, {"type": "lora"})
    la.save_adapter(model, tmp_path / "a")
    r = CliRunner().invoke(
        build_cli(),
        ["generate", "3+4?", "--model", str(llama_dir), "--adapter-path", str(tmp_path / "a"), "--quantize", "4bit"]
        + ["--max-new-tokens", "4"],
    )
    assert r.exit_code == 0, r.output


def test_evaluate_passes_quantize_and_device_map_to_the_loader(llama_dir, tmp_path, monkeypatch) -> None:
    seen: dict = {}

    class Loaded(Exception):
        pass

    def fake_load_model(name, **kwargs):
        seen.update(kwargs)
        raise Loaded

    monkeypatch.setattr(models_module, "load_model", fake_load_model)
    data_dir = tmp_path / "data"
    (data_dir / "dataset" / "gsm8k").mkdir(parents=True)
    write_json(data_dir / "dataset" / "gsm8k" / "test.json", [{"instruction": "1+1?", "answer": "2"}])
    from llm_adapters_eval.config import build_eval_config
    from llm_adapters_eval.runner import run_evaluation

    config = build_eval_config(
        None,
        {"tasks": ("gsm8k",), "data_dir": str(data_dir), "output": str(tmp_path / "e"), "quantize": "4bit"}
        | {"model": str(llama_dir), "device_map": "auto", "progress": False},
    )
    with pytest.raises(Loaded):
        run_evaluation(config, echo=lambda msg: None)
    assert seen["quantize"] == "4bit" and seen["device_map"] == "auto"
