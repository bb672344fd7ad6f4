"""Trainable-parameter counts at real sizes (meta device, nothing allocated) against the reference's figures.

Expected counts are computed here from the formula: a parallel adapter beside a module with d_in inputs and
d_out outputs has Down (m x d_in) + Up (d_out x m) = m (d_in + d_out) parameters.
"""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import llm_adapters as la

LLAMA = {  # (hidden, intermediate, layers, heads)
    "7b": (4096, 11008, 32, 32),
    "13b": (5120, 13824, 40, 40),
}


def meta_llama(size: str) -> LlamaForCausalLM:
    hidden, inter, layers, heads = LLAMA[size]
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        return LlamaForCausalLM(config)


@pytest.mark.parametrize("size", ["7b", "13b"])
def test_counts_of_both_presets(size: str) -> None:
    hidden, inter, layers, _ = LLAMA[size]
    m = 256
    model = meta_llama(size)
    base = sum(p.numel() for p in model.parameters())
    la.attach(model, {"type": "parallel", "bottleneck_size": m, "preset": "paper-best"}, name="best")
    trainable, total = la.trainable_parameters(model)
    up, down = m * (hidden + inter), m * (inter + hidden)
    assert trainable == layers * (up + down)
    assert total == base + trainable
    la.attach(model, {"type": "parallel", "bottleneck_size": m}, name="ref")  # q, k, v: hidden -> hidden each
    assert la.list_adapters(model)[1].parameters == layers * 3 * m * 2 * hidden


def test_reference_figures_llama_7b() -> None:
    model = meta_llama("7b")
    la.attach(model, {"type": "parallel", "bottleneck_size": 256, "target_modules": ["up_proj", "down_proj"]})
    trainable, total = la.trainable_parameters(model)
    assert trainable == 247_463_936
    assert round(100 * trainable / total, 2) == 3.54  # the reference's print_trainable_parameters


def test_reference_figures_llama_13b() -> None:
    model = meta_llama("13b")
    la.attach(model, {"type": "parallel", "bottleneck_size": 256, "preset": "paper-best", "scaling": "learned"})
    trainable, total = la.trainable_parameters(model)
    assert trainable == 40 * 256 * 2 * (5120 + 13824) + 2 * 40  # plus one learned scale per wrapped module
    assert round((trainable - 80) / 1e6, 1) == 388.0
    assert round(100 * trainable / total, 2) == 2.89
