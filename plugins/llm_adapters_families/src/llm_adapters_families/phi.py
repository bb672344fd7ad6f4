"""Phi-1 / Phi-1.5 / Phi-2 (``phi``): parallel attention and MLP on one shared layer norm.

``h = x + attn(ln(x)) + mlp(ln(x))`` with ``input_layernorm`` the only norm, so ``norm.mlp`` is not mapped.
The attention output projection is called ``dense`` and the MLP is ``fc1 -> GELU -> fc2``. (Phi-3 fuses
q/k/v and gate/up and is a different family.)
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="phi",
    model_types=("phi",),
    blocks="model.layers",
    roles={
        "attn.q": "self_attn.q_proj",
        "attn.k": "self_attn.k_proj",
        "attn.v": "self_attn.v_proj",
        "attn.o": "self_attn.dense",
        "mlp.up": "mlp.fc1",
        "mlp.down": "mlp.fc2",
        "norm.attn": "input_layernorm",
    },
    notes="Parallel attention and MLP on one shared norm (input_layernorm); norm.mlp is not mapped.",
    tiny_config={
        "model_type": "phi",
        "vocab_size": 128,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 64,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
