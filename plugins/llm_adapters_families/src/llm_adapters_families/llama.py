"""LLaMA-style decoders: every transformers architecture with LLaMA's module layout.

Each block is ``input_layernorm -> self_attn (q_proj, k_proj, v_proj, o_proj) -> post_attention_layernorm
-> mlp (gate_proj, up_proj, down_proj)``, with separate q/k/v projections and, where the config asks for
it, grouped-query attention (fewer key/value heads than query heads; SmolLM2-135M has 9 and 3). The
architectures differ in details the roles do not see (biases on q/k/v in Qwen2, per-head q/k norms in
Qwen3, Gemma's ``head_dim`` independent of the hidden size, parameter-free norms in OLMo), and each was
checked to build with these module paths under transformers 5.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="llama",
    model_types=(
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "gemma",
        "granite",
        "helium",
        "olmo",
        "smollm3",
        "stablelm",
    ),
    blocks="model.layers",
    roles={
        "attn.q": "self_attn.q_proj",
        "attn.k": "self_attn.k_proj",
        "attn.v": "self_attn.v_proj",
        "attn.o": "self_attn.o_proj",
        "mlp.gate": "mlp.gate_proj",
        "mlp.up": "mlp.up_proj",
        "mlp.down": "mlp.down_proj",
        "norm.attn": "input_layernorm",
        "norm.mlp": "post_attention_layernorm",
    },
    notes=(
        "Separate q/k/v projections; grouped-query attention when num_key_value_heads < num_attention_heads "
        "(k_proj and v_proj are then narrower than q_proj). StableLM with use_parallel_residual has no "
        "post_attention_layernorm (norm.mlp does not resolve there)."
    ),
    tiny_config={
        "model_type": "llama",
        "vocab_size": 128,
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 6,
        "num_key_value_heads": 2,  # grouped-query attention, 3 query heads per key/value head as in SmolLM2
        "max_position_embeddings": 64,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
