"""GPT-J (``gptj``): attention and MLP run in parallel on one shared layer norm.

``h = x + attn(ln_1(x)) + mlp(ln_1(x))``: there is no separate norm before the MLP, so only ``norm.attn``
(``ln_1``) is mapped. Rotary embeddings cover the first ``rotary_dim`` features of each head.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="gptj",
    model_types=("gptj",),
    blocks="transformer.h",
    roles={
        "attn.q": "attn.q_proj",
        "attn.k": "attn.k_proj",
        "attn.v": "attn.v_proj",
        "attn.o": "attn.out_proj",
        "mlp.up": "mlp.fc_in",
        "mlp.down": "mlp.fc_out",
        "norm.attn": "ln_1",
    },
    notes="Parallel attention and MLP on one shared norm (ln_1); norm.mlp is not mapped.",
    tiny_config={
        "model_type": "gptj",
        "vocab_size": 128,
        "n_embd": 32,
        "n_inner": 64,
        "n_layer": 2,
        "n_head": 4,
        "rotary_dim": 4,
        "n_positions": 64,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
