"""Trainable-parameter counts at real sizes equal the reference system's (seed-reference section 1.5), on
models built on the meta device (no weight is allocated)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import llm_adapters as la

LLAMA_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32}
LLAMA_13B = {"hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40, "num_attention_heads": 40}
BEST = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]


def _meta_llama(size: dict) -> torch.nn.Module:
    config = LlamaConfig(vocab_size=32000, max_position_embeddings=2048, **size)
    with torch.device("meta"):
        return LlamaForCausalLM(config)


def _hand_count(size: dict, r: int, modules: list[str]) -> int:
    """r * (d_in + d_out) per adapted linear map, per layer."""
    h, m = size["hidden_size"], size["intermediate_size"]
    shapes = {"q_proj": (h, h), "k_proj": (h, h), "v_proj": (h, h), "up_proj": (h, m), "down_proj": (m, h)}
    return size["num_hidden_layers"] * sum(r * sum(shapes[n]) for n in modules)


@pytest.mark.parametrize(
    ("size", "config", "expected", "percent"),
    [
        (LLAMA_7B, {"r": 8, "target_modules": ["q_proj", "v_proj"]}, 4_194_304, 0.06),
        (LLAMA_7B, {"r": 32, "target_modules": BEST}, 56_098_816, 0.83),
        (LLAMA_7B, {"r": 32, "preset": "paper-best"}, 56_098_816, 0.83),
        (LLAMA_13B, {"r": 8, "target_modules": ["q_proj", "v_proj"]}, 6_553_600, 0.05),
        (LLAMA_13B, {"r": 8}, 6_553_600, 0.05),
        (LLAMA_13B, {"r": 32, "preset": "paper-best"}, 87_818_240, 0.67),
    ],
)
def test_counts_match_the_reference(size: dict, config: dict, expected: int, percent: float) -> None:
    model = _meta_llama(size)
    base_total = sum(p.numel() for p in model.parameters())
    la.attach(model, {"type": "lora", **config})
    trainable, total = la.trainable_parameters(model)
    assert trainable == expected
    modules = config.get("target_modules") or (BEST if config.get("preset") == "paper-best" else ["q_proj", "v_proj"])
    assert trainable == _hand_count(size, config["r"], modules)
    assert total == base_total + trainable  # the reference's convention: adapters count in the total
    assert round(100 * trainable / total, 2) == percent
    assert all(p.device.type == "meta" for p in model.parameters())


def test_dora_adds_one_magnitude_per_output_feature() -> None:
    model = _meta_llama(LLAMA_7B)
    la.attach(model, {"type": "lora", "r": 8, "use_dora": True})
    trainable, _ = la.trainable_parameters(model)
    assert trainable == 4_194_304 + 32 * 2 * 4096


@pytest.mark.installed_plugins
def test_counts_through_the_installed_llama_family() -> None:
    model = _meta_llama(LLAMA_7B)
    if la.engine.model_family(model) is None:
        pytest.skip("no installed model family covers llama")
    la.attach(model, {"type": "lora", "r": 32, "preset": "paper-best"}, name="best")
    la.attach(model, {"type": "lora", "r": 8}, name="reference")
    assert {a.name: a.parameters for a in la.list_adapters(model)} == {"best": 56_098_816, "reference": 4_194_304}
