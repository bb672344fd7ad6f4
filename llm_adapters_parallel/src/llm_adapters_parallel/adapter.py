"""The ``parallel`` adapter type: where parallel adapters go, and the layer built at each site."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_adapters import AdapterType, Placement, Site

from .config import PRESETS, ParallelConfig

if TYPE_CHECKING:
    from .layer import ParallelLayer


class ParallelAdapter(AdapterType):
    """Parallel bottleneck adapters: ``y = W x + b + s * Up(act(Down(dropout(x))))`` beside each wrapped
    module. See :class:`llm_adapters_parallel.layer.ParallelLayer` for the math and
    :class:`llm_adapters_parallel.config.ParallelConfig` for the presets."""

    name = "parallel"
    config_class = ParallelConfig
    description = "Parallel bottleneck adapter, constant or learned scale (He et al. 2022, Hu et al. 2023)"
    default_targets = PRESETS["reference"]
    default_kind = "parallel"

    def placements(self, config: ParallelConfig) -> list[Placement]:  # type: ignore[override]
        targets = config.targets()
        if isinstance(targets, str):
            return [Placement(targets, "parallel", regex=True)]
        return [Placement(t, "parallel") for t in targets]

    def create_layer(self, config: ParallelConfig, site: Site) -> ParallelLayer:  # type: ignore[override]
        # imported here, not at module level: registering the type (say, for `llm-adapters plugins`) needs no torch
        from .layer import ParallelLayer

        d_in, d_out = site.features()  # (the module's input size, its (part's) output size)
        return ParallelLayer(d_in, d_out, config)
