"""The ``fusion`` adapter type: it sits where its fused adapters sit and builds one fusion layer per site."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from llm_adapters import AdapterType, Placement, Site

from .config import FusionConfig

if TYPE_CHECKING:
    from .layer import FusionLayer


class Fusion(AdapterType):
    """AdapterFusion (Pfeiffer et al., 2021): learned attention over N frozen, trained adapters at each of
    their sites. See :class:`llm_adapters_fusion.layer.FusionLayer` for the math."""

    name = "fusion"
    config_class = FusionConfig
    description = "AdapterFusion over trained series / parallel adapters (Pfeiffer et al. 2021)"
    default_kind = "post"

    def placements(self, config: FusionConfig) -> list[Placement]:  # type: ignore[override]
        from .sources import common_targets

        # the exact module paths the fused adapters were saved with, each with its kind
        return [
            Placement(f"^{re.escape(module)}$", kind, regex=True) for module, kind in common_targets(config.adapters)
        ]  # type: ignore[arg-type]

    def create_layer(self, config: FusionConfig, site: Site) -> FusionLayer:  # type: ignore[override]
        # imported here, not at module level: registering the type (say, for `llm-adapters plugins`) needs no torch
        from .layer import FusionLayer
        from .sources import frozen_layer

        fused = [frozen_layer(path, site) for path in config.adapters]
        d = site.features()[1] if site.kind != "pre" else site.features()[0]
        return FusionLayer(d, site.kind, fused, temperature=config.temperature, residual_before=config.residual_before)
