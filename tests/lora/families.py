"""Inline model families for the LoRA tests: a LLaMA-style model, GPT-2 (``Conv1D``, fused q/k/v laid out
contiguously) and GPT-NeoX (fused q/k/v interleaved per head). Registered only inside these tests, so the
LoRA tests do not depend on which family plugins happen to be installed."""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import FusedProjection, ModelFamily, hookimpl

TINY_LLAMA = {
    "model_type": "llama",
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}
TINY_GPT2 = {
    "model_type": "gpt2",
    "vocab_size": 128,
    "n_embd": 32,
    "n_layer": 2,
    "n_head": 4,
    "n_positions": 64,
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "attn_pdrop": 0.0,
}
TINY_NEOX = {
    "model_type": "gpt_neox",
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 64,
    "hidden_dropout": 0.0,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
}

LLAMA = ModelFamily(
    name="lora-test-llama",
    model_types=("llama",),
    blocks="model.layers",
    roles={
        "attn.q": "self_attn.q_proj",
        "attn.k": "self_attn.k_proj",
        "attn.v": "self_attn.v_proj",
        "attn.o": "self_attn.o_proj",
        "mlp.gate": "mlp.gate_proj",
        "mlp.up": "mlp.up_proj",
        "mlp.down": "mlp.down_proj",
    },
    tiny_config=TINY_LLAMA,
)
GPT2 = ModelFamily(
    name="lora-test-gpt2",
    model_types=("gpt2",),
    blocks="transformer.h",
    roles={"attn.qkv": "attn.c_attn", "attn.o": "attn.c_proj", "mlp.up": "mlp.c_fc", "mlp.down": "mlp.c_proj"},
    fused={"attn.qkv": FusedProjection("contiguous")},
    tiny_config=TINY_GPT2,
)
NEOX = ModelFamily(
    name="lora-test-neox",
    model_types=("gpt_neox",),
    blocks="gpt_neox.layers",
    roles={
        "attn.qkv": "attention.query_key_value",
        "attn.o": "attention.dense",
        "mlp.up": "mlp.dense_h_to_4h",
        "mlp.down": "mlp.dense_4h_to_h",
    },
    fused={"attn.qkv": FusedProjection("per_head")},
    tiny_config=TINY_NEOX,
)
FAMILIES = (LLAMA, GPT2, NEOX)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    for family in FAMILIES:
        register(family)
