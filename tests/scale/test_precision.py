"""``dtype: auto`` resolves against the device training runs on: bf16 on a GPU that supports it, fp16 (with the
Trainer's loss scaling) on one that does not, fp32 on the CPU; adapter parameters stay float32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from llm_adapters.engine import adapter_tensors
from llm_adapters.errors import ModelLoadError
from llm_adapters_train import training as training_module
from llm_adapters_train.precision import mixed_precision, model_precision, training_device, training_dtype
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.trainer import training_arguments
from llm_adapters_train.training import train
from tests.training.helpers import records, write_json

from .conftest import needs_bnb

ROOT = Path(__file__).resolve().parents[2]


def _fake_gpu(monkeypatch: pytest.MonkeyPatch, *, bf16: bool | None) -> None:
    """``bf16=None``: no GPU; else a GPU with or without bfloat16 support."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bf16 is not None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bool(bf16))


@pytest.mark.parametrize(
    ("bf16", "expected", "flags"),
    [
        (None, torch.float32, {"bf16": False, "fp16": False}),
        (True, torch.bfloat16, {"bf16": True, "fp16": False}),
        (False, torch.float16, {"bf16": False, "fp16": True}),
    ],
    ids=["cpu", "cuda-bf16", "cuda-no-bf16"],
)
def test_auto_resolves_for_the_training_device(monkeypatch, bf16, expected, flags) -> None:
    _fake_gpu(monkeypatch, bf16=bf16)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert training_device() == (torch.device("cpu") if bf16 is None else torch.device("cuda", 0))
    assert training_dtype("auto") == expected
    assert mixed_precision(training_dtype("auto")) == flags
    assert training_dtype("float32") == torch.float32  # an explicit dtype is kept on every device


def test_each_process_trains_on_its_own_gpu(monkeypatch) -> None:
    _fake_gpu(monkeypatch, bf16=True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert training_device() == torch.device("cuda", 3)


def test_bf16_on_a_gpu_without_it_is_a_clear_error(monkeypatch) -> None:
    _fake_gpu(monkeypatch, bf16=False)
    with pytest.raises(ModelLoadError, match="bfloat16 was requested but this GPU does not support it; use float16"):
        training_dtype("bfloat16")


class _Loaded(Exception):
    """Raised by the stand-in load_model: the test has seen what train() asked for."""


@pytest.mark.parametrize(("bf16", "expected"), [(None, torch.float32), (True, torch.bfloat16), (False, torch.float16)])
def test_train_loads_the_base_in_the_training_precision(monkeypatch, tmp_path, bf16, expected) -> None:
    """The bug this guards against: train() loaded with device='cpu', so auto always meant float32."""
    _fake_gpu(monkeypatch, bf16=bf16)
    seen: dict = {}

    def fake_load_model(name, **kwargs):
        seen.update(kwargs)
        raise _Loaded

    monkeypatch.setattr(training_module, "load_model", fake_load_model)
    data = write_json(tmp_path / "data.json", records(4))
    with pytest.raises(_Loaded):
        train(TrainConfig(model="some/model", data=str(data), output=str(tmp_path / "out")))
    assert seen["dtype"] == expected
    assert seen["device"] == "cpu"  # full precision loads on the CPU; the Trainer moves it (or shards it)
    assert seen["quantize"] is None and seen["device_map"] is None


@needs_bnb
def test_a_quantized_base_loads_on_the_training_gpu(monkeypatch, tmp_path) -> None:
    _fake_gpu(monkeypatch, bf16=True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    seen: dict = {}

    def fake_load_model(name, **kwargs):
        seen.update(kwargs)
        raise _Loaded

    monkeypatch.setattr(training_module, "load_model", fake_load_model)
    data = write_json(tmp_path / "data.json", records(4))
    with pytest.raises(_Loaded):
        train(TrainConfig(model="some/model", quantize="4bit", data=str(data), output=str(tmp_path / "out")))
    assert seen == {"dtype": torch.bfloat16, "device": torch.device("cuda", 1), "quantize": "4bit", "device_map": None}


@pytest.mark.parametrize(
    ("dtype", "bf16", "fp16"),
    [(torch.float32, False, False), (torch.bfloat16, True, False), (torch.float16, False, True)],
)
def test_training_arguments_switch_mixed_precision(tmp_path, dtype, bf16, fp16) -> None:
    cfg = TrainConfig(data="d.json", output=str(tmp_path / "out"), report_to="none")
    args = training_arguments(cfg, has_eval=False, dtype=dtype)
    assert (args.bf16, args.fp16) == (bf16, fp16)


def test_a_bf16_base_trains_float32_adapter_weights(tmp_path) -> None:
    """On the CPU with dtype bfloat16: the base stays bf16, the adapter is created, trained and saved in fp32."""
    from llm_adapters.testing import tiny_model
    from tests.training.helpers import char_tokenizer

    model = tiny_model("llama").to(torch.bfloat16)
    data = write_json(tmp_path / "data.json", records(8))
    cfg = TrainConfig(
        adapter="lora",
        data=str(data),
        output=str(tmp_path / "out"),
        max_steps=2,
        batch_size=2,
        micro_batch_size=2,
        warmup_steps=0,
        learning_rate=1e-2,
        cutoff_len=24,
        train_on_inputs=True,
        save_steps=1000,
        report_to="none",
        progress=False,
    )
    result = train(cfg, model=model, tokenizer=char_tokenizer())
    assert result.metrics["precision"] == "bfloat16"
    assert model_precision(model) == torch.bfloat16
    assert {t.dtype for t in adapter_tensors(model, "default").values()} == {torch.float32}
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert {t.dtype for t in saved.values()} == {torch.float32}


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_states_its_precision(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert "dtype" in raw, f"{path.name} does not state its precision (dtype)"
    assert raw["dtype"] in ("auto", "bfloat16", "float16", "float32")
