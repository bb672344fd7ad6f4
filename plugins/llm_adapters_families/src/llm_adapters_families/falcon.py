"""Falcon (``falcon``): one fused q/k/v projection whose layout depends on the configuration.

Falcon views ``self_attention.query_key_value``'s output in one of three ways, all of them the grouped
``per_head`` layout of :class:`llm_adapters.FusedProjection` for the right number of key/value heads:

* ``new_decoder_architecture`` (Falcon-40B / 180B): ``(kv_heads, heads / kv_heads + 2, head_dim)``, i.e.
  per key/value group its query heads, then its key and value head;
* ``multi_query`` (Falcon-7B): one key and one value head after all query heads, ``(heads + 2, head_dim)``;
* neither: ``(heads, 3, head_dim)``, as in BLOOM.

Falcon's key/value head count also depends on the variant, and it differs between the projection and the
cache: Falcon-40B's projection has ``num_kv_heads`` key/value heads, but it broadcasts them to every query
head before the cache, which then holds ``heads`` of them; Falcon-7B has one (while ``config.num_kv_heads``
says ``heads``). :meth:`FalconFamily.dims` reports the cache's geometry (what prompt-based methods build),
and :meth:`FalconFamily.part_indices` the projection's grouping. The layer norms differ between the
variants too (``input_layernorm`` alone, with ``post_attention_layernorm``, or ``ln_attn`` + ``ln_mlp``),
so no norm role is mapped; target them by module name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from llm_adapters import AttentionDims, FusedProjection, ModelFamily, hookimpl

if TYPE_CHECKING:
    import torch


def projection_kv_heads(config: Any) -> int:
    """Key/value heads in ``query_key_value``'s output (the groups of the fused layout)."""
    if getattr(config, "new_decoder_architecture", False):
        return int(config.num_kv_heads)
    if getattr(config, "multi_query", False):
        return 1
    return int(config.num_attention_heads)


class FalconFamily(ModelFamily):
    """Falcon: the key/value head count depends on the variant, and on cache versus projection."""

    def dims(self, config: Any) -> AttentionDims:
        """The attention geometry as the KV cache holds it (keys and values per layer)."""
        dims = super().dims(config)
        multi_query = getattr(config, "multi_query", False) and not getattr(config, "new_decoder_architecture", False)
        return replace(dims, num_key_value_heads=1 if multi_query else dims.num_attention_heads)

    def part_indices(self, role_of_module: str, part: str, config: Any) -> torch.Tensor:
        """Rows of ``part`` in the fused projection, grouped by the projection's own key/value heads."""
        dims = replace(super().dims(config), num_key_value_heads=projection_kv_heads(config))
        return self.fused[role_of_module].part_indices(part, dims)


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
