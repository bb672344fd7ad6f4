"""The ``series`` adapter type: where series adapters go, and the layer built at each site."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_adapters import AdapterType, Placement, Site

from .config import KIND_BY_ROLE, VARIANTS, SeriesConfig

if TYPE_CHECKING:
    from .layer import SeriesLayer


class SeriesAdapter(AdapterType):
    """Series bottleneck adapters (AdapterH / AdapterP): ``h + s * Up(act(Down(dropout(h))))`` on a module's
    input (``pre``) or output (``post``). See :class:`llm_adapters_series.layer.SeriesLayer` for the math and
    :mod:`llm_adapters_series.config` for the three ways to place it."""

    name = "series"
    config_class = SeriesConfig
    description = "Series bottleneck adapter (AdapterH / AdapterP; Houlsby et al. 2019, Hu et al. 2023)"
    default_targets = tuple(role for role, _, _ in VARIANTS["adapterh"])
    default_kind = "post"

    def placements(self, config: SeriesConfig) -> list[Placement]:  # type: ignore[override]
        if config.placement is not None:
            out = []
            for entry in config.placement:
                target, _, kind = entry.rpartition(":")
                out.append(Placement(target, kind))  # type: ignore[arg-type]
            return out
        targets = config.target_modules
        if isinstance(targets, str):
            return [Placement(targets, "post", regex=True, kind_by_role=KIND_BY_ROLE)]
        if targets is not None:
            return [Placement(t, "post", kind_by_role=KIND_BY_ROLE) for t in targets]
        return [Placement(role, kind, optional=optional) for role, kind, optional in VARIANTS[config.variant]]

    def create_layer(self, config: SeriesConfig, site: Site) -> SeriesLayer:  # type: ignore[override]
        # imported here, not at module level: registering the type (say, for `llm-adapters plugins`) needs no torch
        from .layer import SeriesLayer

        d, _ = site.features()  # pre: (d_in, d_in); post: (d_out, d_out)
        return SeriesLayer(d, config)
