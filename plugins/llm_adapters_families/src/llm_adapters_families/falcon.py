"""Falcon (``falcon``): one fused q/k/v projection whose layout depends on the configuration.

Falcon views ``self_attention.query_key_value``'s output in one of three ways, all of them the grouped
``per_head`` layout of :class:`llm_adapters.FusedProjection` for the right number of key/value heads:

* ``new_decoder_architecture`` (Falcon-40B / 180B): ``(kv_heads, heads / kv_heads + 2, head_dim)``, i.e.
  per key/value group its query heads, then its key and value head;
* ``multi_query`` (Falcon-7B): one key and one value head after all query heads, ``(heads + 2, head_dim)``;
* neither: ``(heads, 3, head_dim)``, as in BLOOM.

``config.num_kv_heads`` equals the head count for Falcon-7B although it uses a single key/value head, so
this family reads the effective number itself. The layer norms differ between these variants too
(``input_layernorm`` alone, with ``post_attention_layernorm``, or ``ln_attn`` + ``ln_mlp``), so no norm
role is mapped; target them by module name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_adapters import AttentionDims, FusedProjection, ModelFamily, hookimpl


class FalconFamily(ModelFamily):
    """Falcon's attention geometry: the effective key/value head count depends on the variant."""

    def dims(self, config: Any) -> AttentionDims:
        dims = super().dims(config)
        if getattr(config, "new_decoder_architecture", False):
            kv = int(config.num_kv_heads)
        elif getattr(config, "multi_query", False):
            kv = 1
        else:
            kv = dims.num_attention_heads
        return AttentionDims(dims.num_layers, dims.hidden_size, dims.num_attention_heads, kv, dims.head_dim)


FAMILY = FalconFamily(
    name="falcon",
    model_types=("falcon",),
    blocks="transformer.h",
    roles={
        "attn.qkv": "self_attention.query_key_value",
        "attn.o": "self_attention.dense",
        "mlp.up": "mlp.dense_h_to_4h",
        "mlp.down": "mlp.dense_4h_to_h",
    },
    fused={"attn.qkv": FusedProjection("per_head")},
    notes=(
        "Fused q/k/v grouped per key/value head (multi-query: one k and v head after all q heads). "
        "Norm roles are not mapped: their names depend on the variant."
    ),
    tiny_config={
        "model_type": "falcon",
        "vocab_size": 128,
        "hidden_size": 32,
        "ffn_hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_kv_heads": 2,  # grouped-query attention through Falcon-40B's layout
        "new_decoder_architecture": True,
        "alibi": False,
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
