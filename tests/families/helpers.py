"""Shared helpers of the family tests: the expected geometry, read from a transformers config by hand."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

#: every family this plugin registers, and the model types each covers
EXPECTED_FAMILIES: dict[str, tuple[str, ...]] = {
    "bloom": ("bloom",),
    "falcon": ("falcon",),
    "gpt2": ("gpt2",),
    "gpt_neo": ("gpt_neo",),
    "gpt_neox": ("gpt_neox",),
    "gptj": ("gptj",),
    "llama": ("llama", "mistral", "qwen2", "qwen3", "gemma", "granite", "helium", "olmo", "smollm3", "stablelm"),
    "opt": ("opt",),
    "phi": ("phi",),
}


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """``(out, in)`` of an ``nn.Linear`` or of GPT-2's ``Conv1D`` (which stores ``(in, out)``)."""
    w = module.weight
    if isinstance(module, Conv1D):
        return int(w.shape[1]), int(w.shape[0])
    assert isinstance(module, nn.Linear), type(module)
    return int(w.shape[0]), int(w.shape[1])


def weight_out_in(module: nn.Module) -> torch.Tensor:
    return module.weight.t() if isinstance(module, Conv1D) else module.weight


def geometry(config: Any) -> dict[str, int]:
    """Hidden size, heads, key/value heads in the q/k/v projections, head size and MLP width, per
    ``model_type``, spelled out from each architecture's configuration class."""
    mt = config.model_type
    if mt in ("gpt2", "gptj"):
        hidden, heads, layers = config.n_embd, config.n_head, config.n_layer
        inner = config.n_inner or 4 * hidden
    elif mt == "bloom":
        hidden, heads, layers, inner = config.hidden_size, config.n_head, config.n_layer, 4 * config.hidden_size
    elif mt == "gpt_neo":
        hidden, heads, layers = config.hidden_size, config.num_heads, config.num_layers
        inner = config.intermediate_size or 4 * hidden
    elif mt == "opt":
        hidden, heads, layers, inner = (
            config.hidden_size,
            config.num_attention_heads,
            config.num_hidden_layers,
            config.ffn_dim,
        )
    elif mt == "falcon":
        hidden, heads, layers = config.hidden_size, config.num_attention_heads, config.num_hidden_layers
        inner = config.ffn_hidden_size or 4 * hidden
    else:  # LLaMA-style, GPT-NeoX, Phi
        hidden, heads, layers = config.hidden_size, config.num_attention_heads, config.num_hidden_layers
        inner = config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv = getattr(config, "num_key_value_heads", None) or heads
    if mt == "falcon":
        kv = config.num_kv_heads if config.new_decoder_architecture else (1 if config.multi_query else heads)
    return {"hidden": hidden, "heads": heads, "kv": kv, "head_dim": head_dim, "inner": inner, "layers": layers}


def expected_linear_shapes(config: Any) -> dict[str, tuple[int, int]]:
    """``(out, in)`` that each linear role must have."""
    g = geometry(config)
    d, q, kv, inner = g["hidden"], g["heads"] * g["head_dim"], g["kv"] * g["head_dim"], g["inner"]
    return {
        "attn.q": (q, d),
        "attn.k": (kv, d),
        "attn.v": (kv, d),
        "attn.o": (d, q),
        "attn.qkv": (q + 2 * kv, d),
        "mlp.gate": (inner, d),
        "mlp.up": (inner, d),
        "mlp.down": (d, inner),
    }


#: tiny configurations of the fused-projection layouts, Falcon's three variants included
def fused_cases() -> dict[str, dict[str, Any]]:
    from llm_adapters import model_families

    fams = model_families()
    falcon = dict(fams["falcon"].tiny_config)
    return {
        "gpt2": dict(fams["gpt2"].tiny_config),
        "bloom": dict(fams["bloom"].tiny_config),
        "gpt_neox": dict(fams["gpt_neox"].tiny_config),
        "falcon-grouped": falcon,  # Falcon-40B layout: 4 heads, 2 kv heads
        "falcon-multi-query": {**falcon, "new_decoder_architecture": False, "multi_query": True},  # Falcon-7B
        "falcon-per-head": {**falcon, "new_decoder_architecture": False, "multi_query": False, "num_kv_heads": 4},
    }
