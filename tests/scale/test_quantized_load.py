"""``load_model(..., quantize="8bit" | "4bit")`` and ``device_map``: what loads, what the quantized layers stand
for (checked against bitsandbytes' own quantizer and a hand-written LLM.int8() formula), and the clear errors
for bad options, all raised before any weight is read."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM

import llm_adapters as la
from llm_adapters import quantize as quantize_module
from llm_adapters.errors import ModelLoadError
from llm_adapters.files import fingerprint
from llm_adapters.quantize import dequantize_weight, is_quantized, quantizable_layers, quantized_kind

from .conftest import needs_bnb

IDS = torch.tensor([[5, 17, 33, 60, 12, 9, 41, 7]])


@pytest.fixture(scope="module")
def full(llama_dir):
    model, _ = la.load_model(str(llama_dir))
    return model


def _q_proj(model: nn.Module) -> nn.Module:
    return model.model.layers[0].self_attn.q_proj


@needs_bnb
def test_4bit_is_nf4_with_double_quantization_and_the_compute_dtype(llama_dir, full) -> None:
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf

    model, tokenizer = la.load_model(str(llama_dir), quantize="4bit")
    layer = _q_proj(model)
    assert isinstance(layer, bnb.nn.Linear4bit) and is_quantized(model) == "4bit"
    assert layer.weight.quant_state.quant_type == "nf4"
    assert layer.weight.quant_state.nested  # double quantization: the block scales are quantized too
    assert layer.compute_dtype == torch.float32  # auto on the CPU
    assert not model.training and tokenizer.pad_token is not None
    # the stored values are bitsandbytes' own NF4 (double-quantized) encoding of the full-precision weight
    w = _q_proj(full).weight.detach()
    packed, state = bnbf.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
    expected = bnbf.dequantize_4bit(packed, state)
    torch.testing.assert_close(dequantize_weight(layer), expected, rtol=0, atol=0)
    # the layer computes with exactly that weight
    x = torch.randn(3, w.shape[1], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(layer(x), x @ expected.t(), rtol=1e-5, atol=1e-6)
    # NF4 is coarse, but it is the same model
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, full(IDS).logits, rtol=0, atol=0.1)


@needs_bnb
def test_8bit_is_llm_int8_row_scaled(llama_dir, full) -> None:
    import bitsandbytes as bnb

    model, _ = la.load_model(str(llama_dir), quantize="8bit")
    layer = _q_proj(model)
    assert isinstance(layer, bnb.nn.Linear8bitLt) and quantized_kind(layer) == "8bit"
    # LLM.int8() by hand: each row (taken in float16, as bitsandbytes quantizes) scaled by its absolute
    # maximum to [-127, 127] and rounded; dequantized as int8 * absmax / 127
    w = _q_proj(full).weight.detach().half().float()
    scale = w.abs().amax(dim=1, keepdim=True)  # (out, 1)
    expected = torch.round(w * (127 / scale)) * scale / 127
    torch.testing.assert_close(dequantize_weight(layer), expected, rtol=0, atol=1e-6)
    assert layer.weight.dtype == torch.int8
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, full(IDS).logits, rtol=0, atol=0.02)


@needs_bnb
@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_gpt2_conv1d_layers_are_quantized_and_keep_the_identity(gpt2_dir, bits) -> None:
    full, _ = la.load_model(str(gpt2_dir))
    model, _ = la.load_model(str(gpt2_dir), quantize=bits)
    assert quantized_kind(model.transformer.h[0].attn.c_attn) == bits
    # a quantized base fingerprints like its full-precision original, so adapter files move between them
    assert fingerprint(model) == fingerprint(full)
    with torch.no_grad():
        torch.testing.assert_close(model(IDS).logits, full(IDS).logits, rtol=0, atol=0.1)


@needs_bnb
def test_the_8bit_scales_are_found_after_the_first_forward(llama_dir, full) -> None:
    """bitsandbytes moves SCB from the weight to the layer's state on the first forward."""
    model, _ = la.load_model(str(llama_dir), quantize="8bit")
    before = dequantize_weight(_q_proj(model))
    with torch.no_grad():
        model(IDS)
    assert _q_proj(model).weight.SCB is None and _q_proj(model).state.SCB is not None
    torch.testing.assert_close(dequantize_weight(_q_proj(model)), before, rtol=0, atol=0)


def test_unknown_quantize_values_are_refused_before_loading(monkeypatch) -> None:
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", _never)
    for bad in ("3bit", "int4", "16bit"):
        with pytest.raises(ModelLoadError) as err:
            la.load_model("/no/such/dir", quantize=bad)
        assert str(err.value) == (
            f"unknown quantize value {bad!r}: use 8bit or 4bit (bitsandbytes), or leave it out to load the model in "
            "full precision"
        )


def test_quantizing_without_bitsandbytes_says_how_to_install_it(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name))
    with pytest.raises(ModelLoadError) as err:
        la.load_model("/no/such/dir", quantize="4bit")
    assert str(err.value) == (
        "quantize='4bit' needs bitsandbytes, which is not installed: pip install 'llm-adapters[quant]' (or pip "
        "install 'bitsandbytes>=0.45')"
    )


@needs_bnb
def test_a_too_old_bitsandbytes_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.41.3")
    with pytest.raises(ModelLoadError, match=r"needs bitsandbytes >= 0\.45 \(installed: 0\.41\.3\)"):
        la.load_model("/no/such/dir", quantize="8bit")


@needs_bnb
def test_a_model_with_nothing_to_quantize_is_refused_before_its_weights_load(llama_dir, monkeypatch) -> None:
    """An architecture without nn.Linear / Conv1D layers (here: one made of embeddings only)."""

    class EmbeddingsOnly(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(8, 4)
            self.head = nn.Linear(4, 8)  # the output embeddings, which bitsandbytes leaves alone

        def get_output_embeddings(self) -> nn.Module:
            return self.head

    assert quantizable_layers(EmbeddingsOnly()) == []
    monkeypatch.setattr(AutoModelForCausalLM, "from_config", lambda *a, **k: EmbeddingsOnly())
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", _never)
    with pytest.raises(ModelLoadError) as err:
        la.load_model(str(llama_dir), quantize="4bit")
    assert str(err.value) == (
        f"cannot quantize {str(llama_dir)!r} to 4bit: its model type 'llama' has no linear layers that "
        "bitsandbytes replaces (nn.Linear / Conv1D); load it without quantize"
    )


def test_quantizable_layers_are_the_linear_ones_except_the_output(full) -> None:
    layers = quantizable_layers(full)
    assert "lm_head" not in layers and "model.layers.0.self_attn.q_proj" in layers
    assert len(layers) == 2 * 7  # q, k, v, o, gate, up, down per layer


def test_device_map_without_a_gpu_is_refused_before_loading(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", _never)
    with pytest.raises(ModelLoadError) as err:
        la.load_model("/no/such/dir", device_map="auto")
    assert str(err.value) == (
        "device_map='auto' spreads the model over GPUs, but no GPU is visible (CUDA is not available); leave it "
        "out to load the model on the CPU"
    )


def test_device_map_clashes_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", _never)
    with pytest.raises(ModelLoadError, match="pass either device or device_map, not both"):
        la.load_model("/no/such/dir", device_map="auto", device="cuda:0")
    with pytest.raises(ModelLoadError, match="unknown device_map 'everywhere': use auto, balanced"):
        la.load_model("/no/such/dir", device_map="everywhere")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ModelLoadError, match="one of 4 processes"):
        la.load_model("/no/such/dir", device_map="auto")


def test_device_map_reaches_from_pretrained(llama_dir, monkeypatch) -> None:
    """The map is handed to transformers (accelerate places the layers) and the model is not moved after."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    seen: dict = {}
    real = AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, path, **kwargs):
        seen.update(kwargs)
        kwargs["device_map"] = {"": "cpu"}  # there is no GPU here: place it on the CPU instead
        return real(cls, path, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    model, _ = la.load_model(str(llama_dir), device_map="auto")
    assert seen["device_map"] == "auto"
    assert seen["dtype"] == torch.bfloat16  # the precision of the GPUs the map spreads over
    assert next(model.parameters()).device.type == "cpu"


def _never(*args, **kwargs):
    raise AssertionError("the model's weights were read although an option was bad")


def test_quantize_module_imports_no_bitsandbytes() -> None:
    """Recognising quantized layers needs no bitsandbytes: plain layers are simply not quantized."""
    assert quantized_kind(nn.Linear(2, 2)) is None and quantized_kind(nn.LayerNorm(2)) is None
    assert quantize_module.check_quantize(None) is None and quantize_module.check_quantize("none") is None
    assert quantize_module.check_quantize("4BIT") == "4bit"
