"""Full-size configurations on the ``meta`` device (no memory): roles resolve with the right shapes, and
adapters placed by role reproduce the reference's trainable-parameter counts.

The probe adapter has the parameter count of a bias-free bottleneck of size ``rank`` (and of LoRA with
``r = rank``): ``rank * (d_a + d_b)`` per site.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

import llm_adapters as la
from llm_adapters import model_families
from llm_adapters.testing.models import tiny_model_from_config

from .helpers import UNMAPPED, check_roles

LLAMA_7B = {
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "vocab_size": 32000,
}
LLAMA_13B = {
    **LLAMA_7B,
    "hidden_size": 5120,
    "intermediate_size": 13824,
    "num_hidden_layers": 40,
    "num_attention_heads": 40,
}
BLOOM_7B1 = {"model_type": "bloom", "hidden_size": 4096, "n_layer": 30, "n_head": 32, "vocab_size": 250880}
GPTJ_6B = {
    "model_type": "gptj",
    "n_embd": 4096,
    "n_layer": 28,
    "n_head": 16,
    "rotary_dim": 64,
    "n_positions": 2048,
    "vocab_size": 50400,
}
MODELS = {"LLaMA-7B": LLAMA_7B, "LLaMA-13B": LLAMA_13B, "BLOOM-7B1": BLOOM_7B1, "GPT-J-6B": GPTJ_6B}

LORA = ("parallel", ("attn.q", "attn.v"), 8)
LORA_WIDE = ("parallel", ("attn.q", "attn.k", "attn.v", "mlp.up", "mlp.down"), 32)
ADAPTER_P = ("post", ("mlp.down",), 256)
PARALLEL_BEST = ("parallel", ("mlp.up", "mlp.down"), 256)
PARALLEL_REF = ("parallel", ("attn.q", "attn.k", "attn.v"), 256)


@functools.cache
def _meta(name: str) -> Any:
    """Built once per module run; :func:`_count` detaches what it attached."""
    return tiny_model_from_config(MODELS[name], device="meta")


def test_llama_7b_on_meta_every_role_resolves_with_the_right_shapes() -> None:
    model = _meta("LLaMA-7B")
    assert next(model.parameters()).device.type == "meta"
    family = model_families()["llama"]
    check_roles(model, family, UNMAPPED["llama"])
    assert family.dims(model.config) == la.AttentionDims(32, 4096, 32, 32, 128)
    assert tuple(model.get_submodule("model.layers.31.mlp.down_proj").weight.shape) == (4096, 11008)


def _count(model: Any, placements: list[tuple[str, tuple[str, ...], int]]) -> int:
    try:
        for i, (kind, roles, rank) in enumerate(placements):
            config = {"type": "famprobe", "kind": kind, "rank": rank, "target_modules": list(roles)}
            la.attach(model, config, name=f"a{i}")
        return la.trainable_parameters(model)[0]
    finally:
        if la.list_adapters(model):
            la.detach(model)


#: seed-reference section 1.5, computed from the reference code, in millions to the figure's precision
EXACT = [
    ("LLaMA-7B", [LORA], "4.19"),
    ("LLaMA-7B", [ADAPTER_P], "67.1"),
    ("LLaMA-7B", [PARALLEL_BEST], "247.5"),
    ("LLaMA-7B", [LORA_WIDE], "56.1"),
    ("LLaMA-13B", [LORA], "6.55"),
    ("LLaMA-13B", [ADAPTER_P], "104.9"),
    ("LLaMA-13B", [PARALLEL_BEST], "388.0"),
    ("LLaMA-13B", [LORA_WIDE], "87.8"),
]


@pytest.mark.parametrize(("model_name", "placements", "millions"), EXACT)
def test_counts_match_the_reference_exactly(model_name: str, placements: list, millions: str) -> None:
    count = _count(_meta(model_name), placements)
    decimals = len(millions.split(".")[1])
    assert f"{count / 1e6:.{decimals}f}" == millions, count


#: README Params column (rounded to two or three figures). AdapterH: pre on the gate (if any) and the up
#: projection, post on the down projection. BLOOM's Parallel default wraps the whole fused projection.
ADAPTER_H = [("pre", ("mlp.gate", "mlp.up"), 256), ("post", ("mlp.down",), 256)]
ADAPTER_H_NO_GATE = [("pre", ("mlp.up",), 256), ("post", ("mlp.down",), 256)]
README = [
    ("LLaMA-7B", [LORA], 4.2e6),
    ("LLaMA-7B", ADAPTER_H, 200e6),
    ("LLaMA-7B", [ADAPTER_P], 66e6),
    ("LLaMA-7B", [PARALLEL_REF], 200e6),
    ("LLaMA-13B", [LORA], 6.5e6),
    ("LLaMA-13B", ADAPTER_H, 314e6),
    ("LLaMA-13B", [ADAPTER_P], 104e6),
    ("LLaMA-13B", [PARALLEL_REF], 314e6),
    ("BLOOM-7B1", [LORA], 4e6),
    ("BLOOM-7B1", ADAPTER_H_NO_GATE, 125e6),
    ("BLOOM-7B1", [ADAPTER_P], 62e6),
    ("BLOOM-7B1", [("parallel", ("attn.qkv",), 256)], 125e6),
    ("GPT-J-6B", [LORA], 3.7e6),
    ("GPT-J-6B", ADAPTER_H_NO_GATE, 117e6),
    ("GPT-J-6B", [ADAPTER_P], 58e6),
    ("GPT-J-6B", [PARALLEL_REF], 176e6),
]


@pytest.mark.parametrize(("model_name", "placements", "expected"), README)
def test_counts_match_the_reference_readme(model_name: str, placements: list, expected: float) -> None:
    count = _count(_meta(model_name), placements)
    assert abs(count - expected) / expected < 0.02, f"{model_name}: {count / 1e6:.2f}M"


def test_bloom_parallel_on_the_three_parts_is_not_the_reference_count() -> None:
    """Three adapters on q, k and v rows have more parameters than one on the whole fused projection."""
    parts = _count(_meta("BLOOM-7B1"), [PARALLEL_REF])
    assert parts == 30 * 3 * 256 * (4096 + 4096)
