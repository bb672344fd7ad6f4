"""GPT-2 (``gpt2``): ``Conv1D`` projections and one fused q/k/v projection in three contiguous blocks.

GPT-2's ``Conv1D`` stores its weight as ``(in, out)``, the transpose of ``nn.Linear``; the core's wrapper
reads it that way, so adapters see the usual ``(out, in)``. ``attn.c_attn`` maps ``D`` to ``3 * D`` and
the model splits its output with ``split(D)``: ``[q (D) | k (D) | v (D)]``, the ``contiguous`` layout.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_adapters import FusedProjection, ModelFamily, hookimpl

FAMILY = ModelFamily(
    name="gpt2",
    model_types=("gpt2",),
    blocks="transformer.h",
    roles={
        "attn.qkv": "attn.c_attn",
        "attn.o": "attn.c_proj",
        "mlp.up": "mlp.c_fc",
        "mlp.down": "mlp.c_proj",
        "norm.attn": "ln_1",
        "norm.mlp": "ln_2",
    },
    fused={"attn.qkv": FusedProjection("contiguous")},
    notes="Conv1D weights are stored (in, out); fused c_attn is [q | k | v] in contiguous blocks.",
    tiny_config={
        "model_type": "gpt2",
        "vocab_size": 128,
        "n_embd": 32,
        "n_inner": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 64,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "summary_first_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
)


@hookimpl
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    register(FAMILY)
