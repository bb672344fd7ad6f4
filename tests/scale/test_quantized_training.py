"""Training on 8-bit and 4-bit bases on the CPU: the loss falls, only adapter parameters change (the quantized
weights keep every byte), the k-bit preparation is done for the user, and the adapter written loads onto the
full-precision base."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.quantize import dequantize_weight, quantized_kind
from llm_adapters_train.kbit import prepare_kbit_training
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import train
from tests.training.helpers import records, write_json

from .conftest import needs_bnb

pytestmark = needs_bnb

IDS = torch.tensor([[5, 17, 33, 60, 12, 9, 41, 7]])
OPTIONS = {
    "lora": {"target_modules": ["attn.q", "attn.k", "attn.v", "mlp.up", "mlp.down"]},
    "series": {},
    "parallel": {},
}


def _config(data: Path, out: Path, adapter: str, **kw) -> TrainConfig:
    base = dict(
        adapter=adapter,
        adapter_options=OPTIONS.get(adapter, {}),
        data=str(data),
        output=str(out),
        max_steps=12,
        batch_size=4,
        micro_batch_size=4,
        warmup_steps=0,
        learning_rate=1e-2,
        cutoff_len=24,
        train_on_inputs=True,
        save_steps=1000,
        logging_steps=1,
        report_to="none",
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def _frozen(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every base parameter (quantized bytes included) and every quantized layer's decoded weight."""
    out = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    for path, module in model.named_modules():
        if quantized_kind(module) is not None:
            out[f"{path}:decoded"] = dequantize_weight(module)
    return out


@pytest.mark.parametrize("adapter", ["lora", "series", "parallel"])
@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_the_loss_falls_and_only_the_adapter_changes(llama_dir, tmp_path, bits, adapter) -> None:
    data = write_json(tmp_path / "data.json", records(48))
    model, tokenizer = la.load_model(str(llama_dir), quantize=bits)
    la.attach(model, {"type": adapter, **OPTIONS[adapter]})
    adapter_before = {k: v.detach().clone() for k, v in adapter_tensors(model, "default").items()}
    base_before = _frozen(model)

    result = train(_config(data, tmp_path / "out", adapter), model=model, tokenizer=tokenizer)

    losses = [e["loss"] for e in result.metrics["log_history"] if "loss" in e]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.05, losses
    assert result.metrics["quantize"] == bits and result.metrics["gradient_checkpointing"] is True
    base_after = _frozen(model)
    assert base_after.keys() == base_before.keys()
    assert all(torch.equal(base_after[k], base_before[k]) for k in base_before), "a base weight changed"
    after = adapter_tensors(model, "default")
    assert sum(not torch.equal(after[k], adapter_before[k]) for k in adapter_before) >= len(adapter_before) // 2

    full, _ = la.load_model(str(llama_dir))  # the adapter loads onto the full-precision base, values intact
    la.load_adapter(full, tmp_path / "out")
    loaded = adapter_tensors(full, "default")
    assert loaded.keys() == after.keys()
    assert all(torch.equal(loaded[k], after[k].detach()) for k in after)


@pytest.mark.parametrize("adapter", ["dora", "prefix"])
def test_dora_and_prompt_methods_train_on_a_4bit_base(llama_dir, tmp_path, adapter) -> None:
    data = write_json(tmp_path / "data.json", records(16))
    options = {"use_dora": True, "target_modules": ["attn.q", "attn.v"]} if adapter == "dora" else {}
    cfg = _config(
        data, tmp_path / "out", "lora" if adapter == "dora" else adapter, adapter_options=options, max_steps=3
    )
    model, tokenizer = la.load_model(str(llama_dir), quantize="4bit")
    result = train(cfg, model=model, tokenizer=tokenizer)
    assert math.isfinite(result.metrics["train_loss"]) and result.metrics["global_step"] == 3
    full, _ = la.load_model(str(llama_dir))
    la.load_adapter(full, tmp_path / "out")
    saved = adapter_tensors(full, "default")
    assert all(torch.equal(saved[k], v.detach()) for k, v in adapter_tensors(model, "default").items())


def test_train_loads_the_quantized_base_itself(llama_dir, tmp_path) -> None:
    """TrainConfig.quantize: train() loads the base quantized; gradient checkpointing can be switched off."""
    data = write_json(tmp_path / "data.json", records(16))
    cfg = _config(data, tmp_path / "out", "lora", model=str(llama_dir), quantize="4bit", max_steps=2)
    cfg = cfg.model_copy(update={"gradient_checkpointing": False})
    result = train(cfg)
    assert result.metrics["quantize"] == "4bit" and result.metrics["gradient_checkpointing"] is False
    assert result.metrics["precision"] == "float32"


def test_kbit_preparation_casts_what_bitsandbytes_left_in_half_precision(llama_dir) -> None:
    model, _ = la.load_model(str(llama_dir), quantize="4bit", dtype="bfloat16")
    la.attach(model, {"type": "lora"})
    packed = {n: p.detach().clone() for n, p in model.named_parameters() if p.dtype == torch.uint8}
    half = [n for n, p in model.named_parameters() if p.dtype == torch.bfloat16]
    assert "model.norm.weight" in half and "lm_head.weight" in half and "model.embed_tokens.weight" in half
    cast = prepare_kbit_training(model, gradient_checkpointing=True)
    params = dict(model.named_parameters())
    assert cast == sum(params[n].numel() for n in half)
    assert all(params[n].dtype == torch.float32 for n in half)
    assert all(torch.equal(params[n], packed[n]) for n in packed)  # quantized weights untouched
    assert all(not params[n].requires_grad for n in half)
    embeds = model.get_input_embeddings()(IDS)
    assert embeds.requires_grad  # so that recomputed (checkpointed) segments reach the adapters
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.train()
        loss = model(input_ids=IDS, labels=IDS).loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_a_model_passed_in_must_match_the_quantize_option(llama_dir, tmp_path) -> None:
    from llm_adapters_train.errors import TrainingError

    data = write_json(tmp_path / "data.json", records(4))
    model, tokenizer = la.load_model(str(llama_dir))
    with pytest.raises(TrainingError, match=r"quantize='4bit' applies when train\(\) loads the model, but the model"):
        train(_config(data, tmp_path / "out", "lora", quantize="4bit"), model=model, tokenizer=tokenizer)
