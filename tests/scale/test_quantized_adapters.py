"""Adapters on quantized bases: every adapter type attaches and gets gradients on 8-bit and 4-bit layers; what
reads the base weight (DoRA's magnitude and norm) reads the dequantized weight, so an adapter on a 4-bit layer
computes what it computes on a full-precision layer holding the same (dequantized) values; merging into a
quantized base is refused with the model unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.errors import AdapterStateError
from llm_adapters.quantize import quantized_kind

from .conftest import needs_bnb

pytestmark = needs_bnb

IDS = torch.tensor([[5, 17, 33, 60, 12, 9, 41, 7], [8, 3, 22, 45, 61, 30, 2, 19]])
CONFIGS = {
    "lora": {"type": "lora", "target_modules": ["attn.q", "attn.v", "mlp.down"]},
    "dora": {"type": "lora", "use_dora": True, "dropout": 0.0, "target_modules": ["attn.q", "attn.v", "mlp.up"]},
    "series": {"type": "series"},
    "parallel": {"type": "parallel"},
    "prefix": {"type": "prefix", "num_virtual_tokens": 4},
    "prompt": {"type": "prompt", "num_virtual_tokens": 4},
    "ptuning": {"type": "ptuning", "num_virtual_tokens": 4},
}


def _dequantized_copy(quantized: nn.Module, full: nn.Module) -> nn.Module:
    """``full`` with every layer that is quantized in ``quantized`` holding the values bitsandbytes decodes,
    decoded here straight with bitsandbytes (not through llm-adapters)."""
    import bitsandbytes.functional as bnbf

    layers = dict(quantized.named_modules())
    with torch.no_grad():
        for path, module in full.named_modules():
            q = layers.get(path)
            if q is None or quantized_kind(q) is None:
                continue
            if quantized_kind(q) == "4bit":
                w = bnbf.dequantize_4bit(q.weight.data, q.weight.quant_state)
            else:
                w = q.weight.data.float() * q.weight.SCB[:, None] / 127
            module.weight.copy_(w)
    return full


@pytest.mark.parametrize("bits", ["8bit", "4bit"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_adapter_type_attaches_and_gets_gradients(llama_dir, bits, name) -> None:
    model, _ = la.load_model(str(llama_dir), quantize=bits)
    la.attach(model, CONFIGS[name])
    model.train()
    out = model(input_ids=IDS, labels=IDS)
    out.loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adapters." in n or "llm_adapters_model_level" in n for n in trainable)
    assert all(p.grad is not None for p in trainable.values())
    assert any(p.grad.abs().sum() > 0 for p in trainable.values())
    assert {p.dtype for p in trainable.values()} == {torch.float32}
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


@pytest.mark.parametrize("name", ["lora", "dora"])
def test_an_adapter_on_a_4bit_layer_computes_as_on_the_dequantized_weight(llama_dir, name) -> None:
    quantized, _ = la.load_model(str(llama_dir), quantize="4bit")
    full = _dequantized_copy(quantized, la.load_model(str(llama_dir))[0])
    for model in (quantized, full):
        torch.manual_seed(1)
        la.attach(model, CONFIGS[name])
    with torch.no_grad():  # a non-zero B, the same in both
        in_full = adapter_tensors(full, "default")
        for key, tq in adapter_tensors(quantized, "default").items():
            if key.endswith("lora_B"):
                tq.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(key)))
            in_full[key].copy_(tq)
        torch.testing.assert_close(quantized(IDS).logits, full(IDS).logits, rtol=1e-4, atol=1e-5)


def test_dora_magnitude_is_the_row_norm_of_the_dequantized_weight(llama_dir) -> None:
    import bitsandbytes.functional as bnbf

    model, _ = la.load_model(str(llama_dir), quantize="4bit")
    q = model.model.layers[0].self_attn.q_proj
    expected = torch.linalg.vector_norm(bnbf.dequantize_4bit(q.weight.data, q.weight.quant_state), dim=1)
    la.attach(model, CONFIGS["dora"])
    layer = model.model.layers[0].self_attn.q_proj.adapters["default"]["parallel"]
    torch.testing.assert_close(layer.magnitude.detach(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_merging_into_a_quantized_base_is_refused_and_changes_nothing(llama_dir, bits) -> None:
    model, _ = la.load_model(str(llama_dir), quantize=bits)
    la.attach(model, CONFIGS["lora"])
    with torch.no_grad():
        for key, t in adapter_tensors(model, "default").items():
            if key.endswith("lora_B"):
                t.fill_(0.01)
        before = model(IDS).logits
    stored = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    with pytest.raises(AdapterStateError) as err:
        la.merge(model)
    assert str(err.value).startswith(f"cannot merge default: the base weight is quantized ({bits}, ")
    assert "load the base in full precision and merge there (llm-adapters export does that" in str(err.value)
    assert not la.list_adapters(model)[0].merged
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, before, rtol=0, atol=0)
    assert all(torch.equal(p, stored[n]) for n, p in model.named_parameters() if not p.requires_grad)


def test_export_refuses_a_quantized_base(llama_dir, tmp_path) -> None:
    from llm_adapters_train.export import export_merged

    model, tokenizer = la.load_model(str(llama_dir), quantize="4bit")
    la.attach(model, CONFIGS["lora"])
    with pytest.raises(AdapterStateError, match="cannot export a merged model from this 4bit-quantized base"):
        export_merged(model, tokenizer, tmp_path / "export")
    assert not (tmp_path / "export").exists()
