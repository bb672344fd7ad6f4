"""BLOOM (``bloom``): ALiBi positions, one fused q/k/v projection laid out per head.

``self_attention.query_key_value`` maps the hidden size ``D`` to ``3 * D``; BLOOM views its output as
``(heads, 3, head_dim)``, so the query, key and value rows of each head sit next to each other
(``[q_0 k_0 v_0 | q_1 k_1 v_1 | ...]``). The roles ``attn.q`` / ``attn.k`` / ``attn.v`` address those
interleaved rows, not the first / middle / last third of the output.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import FusedProjection, ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="bloom",
    model_types=("bloom",),
    blocks="transformer.h",
    roles={
        "attn.qkv": "self_attention.query_key_value",
        "attn.o": "self_attention.dense",
        "mlp.up": "mlp.dense_h_to_4h",
        "mlp.down": "mlp.dense_4h_to_h",
        "norm.attn": "input_layernorm",
        "norm.mlp": "post_attention_layernorm",
    },
    fused={"attn.qkv": FusedProjection("per_head")},
    notes="Fused q/k/v interleaved per head: output viewed as (heads, 3, head_dim). No MLP gate.",
    tiny_config={
        "model_type": "bloom",
        "vocab_size": 128,
        "hidden_size": 32,
        "n_layer": 2,
        "n_head": 4,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
