"""A test-only plugin: a mergeable low-rank 'probe' adapter of any kind, and a LLaMA-style family.

It is registered inline by the core's tests (never through an entry point), so the core is tested without
any of the real adapter plugins.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from llm_adapters import AdapterConfig, AdapterLayer, AdapterType, ModelFamily, Placement, Site, hookimpl
from llm_adapters.family import FusedProjection


class ProbeConfig(AdapterConfig):
    type: Literal["probe"] = "probe"
    rank: int = Field(2, ge=1, description="Rank of the low-rank function.")
    kind: Literal["pre", "parallel", "post"] = Field("parallel", description="Where the function acts.")


class ProbeLayer(AdapterLayer):
    """pre: x + U V x; parallel: U V x; post: y + U V y."""

    mergeable = True

    def __init__(self, d_in: int, d_out: int, rank: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.down = nn.Parameter(torch.empty(rank, d_in))
        self.up = nn.Parameter(torch.zeros(d_out, rank))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))

    def forward(self, h: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        f = h @ self.down.t() @ self.up.t()
        return f if self.kind == "parallel" else h + f

    def delta_weight(self) -> torch.Tensor:  # parallel: U V
        return self.up @ self.down

    def input_map(self) -> torch.Tensor:  # pre: x + U V x = (I + U V) x
        return torch.eye(self.down.shape[1], device=self.down.device) + self.up @ self.down

    def output_map(self) -> torch.Tensor:  # post: y + U V y = (I + U V) y
        return self.input_map()


class Probe(AdapterType):
    name = "probe"
    config_class = ProbeConfig
    default_targets = ("attn.q", "attn.v")

    def placements(self, config: ProbeConfig) -> list[Placement]:  # type: ignore[override]
        return [Placement(p.target, config.kind, p.regex) for p in super().placements(config)]

    def create_layer(self, config: ProbeConfig, site: Site) -> ProbeLayer:  # type: ignore[override]
        d_in, d_out = site.features()
        return ProbeLayer(d_in, d_out, config.rank, site.kind)


TINY_LLAMA = {
    "model_type": "llama",
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "tie_word_embeddings": False,
}
TINY_GPT2 = {
    "model_type": "gpt2",
    "vocab_size": 128,
    "n_embd": 32,
    "n_layer": 2,
    "n_head": 4,
    "n_positions": 64,
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "attn_pdrop": 0.0,
}

LLAMA = ModelFamily(
    name="test-llama",
    model_types=("llama",),
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
    tiny_config=TINY_LLAMA,
)
GPT2 = ModelFamily(
    name="test-gpt2",
    model_types=("gpt2",),
    blocks="transformer.h",
    roles={"attn.qkv": "attn.c_attn", "attn.o": "attn.c_proj", "mlp.up": "mlp.c_fc", "mlp.down": "mlp.c_proj"},
    fused={"attn.qkv": FusedProjection("contiguous")},
    tiny_config=TINY_GPT2,
)


@hookimpl
def register_adapters(register):  # type: ignore[no-untyped-def]
    register(Probe)


@hookimpl
def register_model_families(register):  # type: ignore[no-untyped-def]
    register(LLAMA)
    register(GPT2)
