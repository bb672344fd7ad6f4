"""Trainable-parameter counts at real sizes (meta device, nothing allocated) against the reference's figures.

Expected counts are computed here from the formula: a series adapter at a module reading and writing d
features has Down (m x d) + Up (d x m) = 2 d m parameters; AdapterH adds one on the gate and up projections'
input (d = hidden) and one on the down projection's output (d = hidden).
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
def test_adapterp_and_adapterh_counts(size: str) -> None:
    hidden, _, layers, _ = LLAMA[size]
    m = 256
    model = meta_llama(size)
    base = sum(p.numel() for p in model.parameters())
    la.attach(model, {"type": "series", "bottleneck_size": m, "variant": "adapterp"}, name="p")
    trainable, total = la.trainable_parameters(model)
    assert trainable == layers * 2 * hidden * m
    assert total == base + trainable
    la.attach(model, {"type": "series", "bottleneck_size": m}, name="h")
    assert la.list_adapters(model)[1].parameters == layers * 3 * 2 * hidden * m


def test_reference_figures_llama_7b() -> None:
    model = meta_llama("7b")
    la.attach(model, {"type": "series", "bottleneck_size": 256, "variant": "adapterp"})
    trainable, total = la.trainable_parameters(model)
    assert trainable == 67_108_864
    assert round(100 * trainable / total, 2) == 0.99  # the reference's print_trainable_parameters


def test_reference_figures_llama_13b() -> None:
    model = meta_llama("13b")
    la.attach(model, {"type": "series", "bottleneck_size": 256, "variant": "adapterp"})
    trainable, total = la.trainable_parameters(model)
    assert round(trainable / 1e6, 1) == 104.9
    assert round(100 * trainable / total, 2) == 0.80
