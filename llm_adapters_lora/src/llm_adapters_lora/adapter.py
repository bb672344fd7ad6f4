"""The ``lora`` adapter type: where LoRA goes by default and how one layer is built for one site."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_adapters import AdapterType, Placement, Site

from .config import PRESETS, LoRAConfig

if TYPE_CHECKING:
    from .layers import LoRALayer


class LoRA(AdapterType):
    """LoRA, with the rsLoRA scale and DoRA as options. Layers are of kind "parallel" and mergeable."""

    name = "lora"
    config_class = LoRAConfig
    description = "LoRA low-rank update of linear maps (rsLoRA scale and DoRA as options); mergeable"
    default_targets = PRESETS["reference"]
    default_kind = "parallel"

    def placements(self, config: LoRAConfig) -> list[Placement]:  # type: ignore[override]
        targets = config.targets()
        if isinstance(targets, str):
            return [Placement(targets, "parallel", regex=True)]
        return [Placement(t, "parallel") for t in targets]

    def create_layer(self, config: LoRAConfig, site: Site) -> LoRALayer:  # type: ignore[override]
        # imported here, not at module level: registering the type (say, for `llm-adapters plugins`) needs no torch
        from .layers import DoRALayer, LoRALayer

        d_in, d_out = site.features("parallel")  # d_out: the part's size on a fused projection
        if config.use_dora:
            return DoRALayer(d_in, d_out, config.r, config.scale, config.dropout, site.weight, site.bias)
        return LoRALayer(d_in, d_out, config.r, config.scale, config.dropout)
