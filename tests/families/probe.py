"""A test-only adapter for the family tests: a mergeable low-rank function of any kind.

``pre``: ``x + U V x``; ``parallel``: ``U V x``; ``post``: ``y + U V y``, with ``V`` of shape
``(rank, d_a)`` and ``U`` of shape ``(d_b, rank)``. It has exactly the parameter count of a bias-free
bottleneck adapter of size ``rank`` (and of LoRA with ``r = rank``), which the reference-count tests use.
Registered inline (never through an entry point).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from llm_adapters import AdapterConfig, AdapterLayer, AdapterType, Placement, Site, hookimpl


class FamProbeConfig(AdapterConfig):
    type: Literal["famprobe"] = "famprobe"
    rank: int = Field(2, ge=1, description="Rank of the low-rank function.")
    kind: Literal["pre", "parallel", "post"] = Field("parallel", description="Where the function acts.")


class FamProbeLayer(AdapterLayer):
    mergeable = True

    def __init__(self, d_a: int, d_b: int, rank: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.down = nn.Parameter(torch.empty(rank, d_a))  # V: (rank, d_a)
        self.up = nn.Parameter(torch.zeros(d_b, rank))  # U: (d_b, rank), zero: identity at start
        nn.init.normal_(self.down, std=0.1)

    def forward(self, h: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        f = h @ self.down.t() @ self.up.t()  # (..., d_a) -> (..., d_b)
        return f if self.kind == "parallel" else h + f

    def delta_weight(self) -> torch.Tensor:
        return self.up @ self.down  # (d_out, d_in)

    def input_map(self) -> torch.Tensor:  # pre: (I + U V), (d_in, d_in)
        return torch.eye(self.down.shape[1], device=self.down.device) + self.up @ self.down

    def output_map(self) -> torch.Tensor:  # post: (I + U V), (d_out, d_out)
        return self.input_map()


class FamProbe(AdapterType):
    name = "famprobe"
    config_class = FamProbeConfig
    default_targets = ("attn.q", "attn.v")

    def placements(self, config: FamProbeConfig) -> list[Placement]:  # type: ignore[override]
        return [Placement(p.target, config.kind, p.regex) for p in super().placements(config)]

    def create_layer(self, config: FamProbeConfig, site: Site) -> FamProbeLayer:  # type: ignore[override]
        d_a, d_b = site.features()
        return FamProbeLayer(d_a, d_b, config.rank, site.kind)


@hookimpl
def register_adapters(register: Callable[[type[AdapterType]], None]) -> None:
    register(FamProbe)
