"""OPT (``opt``): separate q/k/v projections with biases, an ``fc1 -> ReLU -> fc2`` MLP.

The block's modules sit directly on the layer (``fc1``, ``fc2``, ``final_layer_norm``), not under an
``mlp`` submodule. OPT-350m is the odd one out: ``do_layer_norm_before=False`` applies both layer norms
*after* their sub-block, so ``norm.attn`` / ``norm.mlp`` are post-norms there, and it projects its
embeddings (``word_embed_proj_dim``) in and out of the blocks' hidden size.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="opt",
    model_types=("opt",),
    blocks="model.decoder.layers",
    roles={
        "attn.q": "self_attn.q_proj",
        "attn.k": "self_attn.k_proj",
        "attn.v": "self_attn.v_proj",
        "attn.o": "self_attn.out_proj",
        "mlp.up": "fc1",
        "mlp.down": "fc2",
        "norm.attn": "self_attn_layer_norm",
        "norm.mlp": "final_layer_norm",
    },
    notes="MLP projections fc1/fc2 sit on the block; OPT-350m uses post-norms (do_layer_norm_before=False).",
    tiny_config={
        "model_type": "opt",
        "vocab_size": 128,
        "hidden_size": 32,
        "word_embed_proj_dim": 32,
        "ffn_dim": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 64,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "layerdrop": 0.0,
        "pad_token_id": 1,
        "bos_token_id": 2,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
