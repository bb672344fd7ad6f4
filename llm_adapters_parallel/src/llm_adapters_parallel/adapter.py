"""The ``parallel`` adapter type: where parallel adapters go, and the layer built at each site."""

from __future__ import annotations

from llm_adapters import AdapterType, Placement, Site

from .config import PRESETS, ParallelConfig
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
    mergeable = False  # the bottleneck is non-linear: no weight change equals it

    def placements(self, config: ParallelConfig) -> list[Placement]:  # type: ignore[override]
        targets = config.targets()
        if isinstance(targets, str):
            return [Placement(targets, "parallel", regex=True)]
        return [Placement(t, "parallel") for t in targets]

    def create_layer(self, config: ParallelConfig, site: Site) -> ParallelLayer:  # type: ignore[override]
        d_in, d_out = site.features()  # (the module's input size, its (part's) output size)
        return ParallelLayer(d_in, d_out, config)
