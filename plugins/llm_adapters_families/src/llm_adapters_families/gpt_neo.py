"""GPT-Neo (``gpt_neo``): separate q/k/v projections one level deeper, under ``attn.attention``.

Layers alternate between global and local (sliding-window) attention as ``attention_types`` says; the
module layout is the same for both. The MLP is ``c_fc -> GELU -> c_proj`` with ``nn.Linear`` layers
(unlike GPT-2's ``Conv1D``).
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="gpt_neo",
    model_types=("gpt_neo",),
    blocks="transformer.h",
    roles={
        "attn.q": "attn.attention.q_proj",
        "attn.k": "attn.attention.k_proj",
        "attn.v": "attn.attention.v_proj",
        "attn.o": "attn.attention.out_proj",
        "mlp.up": "mlp.c_fc",
        "mlp.down": "mlp.c_proj",
        "norm.attn": "ln_1",
        "norm.mlp": "ln_2",
    },
    notes="q/k/v under attn.attention; alternating global / local attention layers.",
    tiny_config={
        "model_type": "gpt_neo",
        "vocab_size": 128,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "attention_types": [[["global", "local"], 1]],
        "window_size": 8,
        "max_position_embeddings": 64,
        "embed_dropout": 0.0,
        "attention_dropout": 0.0,
        "resid_dropout": 0.0,
        "classifier_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
