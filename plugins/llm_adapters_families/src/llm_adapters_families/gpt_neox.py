"""GPT-NeoX (``gpt_neox``: Pythia, GPT-NeoX-20B): one fused q/k/v projection laid out per head.

``attention.query_key_value`` maps ``D`` to ``3 * D``; the model views its output as
``(heads, 3 * head_dim)`` and chunks the last axis into q, k and v, so each head's query, key and value
rows are adjacent, as in BLOOM. With ``use_parallel_residual`` (the default) attention and MLP read the
same input through their own norms.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import FusedProjection, ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="gpt_neox",
    model_types=("gpt_neox",),
    blocks="gpt_neox.layers",
    roles={
        "attn.qkv": "attention.query_key_value",
        "attn.o": "attention.dense",
        "mlp.up": "mlp.dense_h_to_4h",
        "mlp.down": "mlp.dense_4h_to_h",
        "norm.attn": "input_layernorm",
        "norm.mlp": "post_attention_layernorm",
    },
    fused={"attn.qkv": FusedProjection("per_head")},
    notes="Fused q/k/v interleaved per head: output viewed as (heads, 3, head_dim). No MLP gate.",
    tiny_config={
        "model_type": "gpt_neox",
        "vocab_size": 128,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 64,
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        "classifier_dropout": 0.0,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
