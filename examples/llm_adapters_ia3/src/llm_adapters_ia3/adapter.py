"""The ``ia3`` adapter type: where the (IA)^3 vectors go and the layer built at each site."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_adapters import AdapterType, Placement, Site

from .config import DEFAULT_TARGETS, KIND_BY_ROLE, IA3Config

if TYPE_CHECKING:
    from .layers import IA3Scale


class IA3(AdapterType):
    """(IA)^3: keys and values rescaled after their projections (``post``), the feed-forward's hidden
    activation before its down projection (``pre``). See :mod:`llm_adapters_ia3.layers` for the math."""

    name = "ia3"
    config_class = IA3Config
    description = "(IA)^3 per-channel rescaling of keys, values and the feed-forward activation (Liu et al. 2022)"
    default_targets = DEFAULT_TARGETS
    default_kind = "post"

    def placements(self, config: IA3Config) -> list[Placement]:  # type: ignore[override]
        targets = config.target_modules
        if isinstance(targets, str):
            return [Placement(targets, "post", regex=True, kind_by_role=KIND_BY_ROLE)]
        return [Placement(t, "post", kind_by_role=KIND_BY_ROLE) for t in (targets or self.default_targets)]

    def create_layer(self, config: IA3Config, site: Site) -> IA3Scale:  # type: ignore[override]
        # imported here, not at module level: registering the type (say, for `llm-adapters plugins`) needs no torch
        from .layers import IA3InputScale, IA3OutputScale

        channels, _ = site.features()  # pre: d_in; post: d_out (the part's size on a fused projection)
        init_std = config.init_std if config.init == "normal" else 0.0
        if site.kind == "pre":
            return IA3InputScale(channels, init_std)
        if site.kind == "post":
            return IA3OutputScale(channels, init_std)
        raise TypeError(f"(IA)^3 rescales a module's input or output, not a {site.kind!r} site")
