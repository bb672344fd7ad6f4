"""The ``lora`` adapter type: where LoRA goes by default and how one layer is built for one site."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_adapters import AdapterType, Placement, Site

from .config import PRESETS, LoRAConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .layers import LoRALayer


#: roles whose modules read one input: the query, key and value maps of an attention; gate and up of an MLP
SHARED_INPUT_ROLES = {"attn.q": "attention input", "attn.k": "attention input", "attn.v": "attention input",
                      "mlp.gate": "mlp input", "mlp.up": "mlp input"}  # fmt: skip


def shared_input(site: Site) -> tuple[str, str] | None:
    """Which input the site's module reads, as far as the adapter can share its dropout mask: the parts of one
    fused projection read its input; the q / k / v (gate / up) maps of one block read the block's input."""
    if site.part is not None:
        return (site.module_path, "fused input")
    group = SHARED_INPUT_ROLES.get(site.role or "")
    if group is None:
        return None
    return (site.module_path.rsplit(".", 1)[0], group)


class LoRA(AdapterType):
    """LoRA, with the rsLoRA scale and DoRA as options. Layers are of kind "parallel" and mergeable."""

    name = "lora"
    config_class = LoRAConfig
    description = "LoRA low-rank update of linear maps (rsLoRA scale and DoRA as options); mergeable"
    default_targets = PRESETS["reference"]
    default_kind = "parallel"
    peft_type = "LORA"

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
            layer: LoRALayer = DoRALayer(d_in, d_out, config.r, config.scale, config.dropout, site.weight, site.bias)
        else:
            layer = LoRALayer(d_in, d_out, config.r, config.scale, config.dropout)
        key = shared_input(site)
        if key is not None:  # one dropout mask and one down-projection per input this adapter reads
            from .layers import SharedInput

            group = self.__dict__.setdefault("_shared_inputs", {}).setdefault(key, SharedInput())
            group.members.append(layer)
            layer.shared_input = group
        return layer

    def to_peft(  # type: ignore[override]
        self, config: LoRAConfig, sites: list[dict[str, Any]], tensors: dict[str, torch.Tensor], model: nn.Module
    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """PEFT's LoRA config and tensor names (see :mod:`llm_adapters_lora.peft`)."""
        from .peft import to_peft

        return to_peft(config, sites, tensors, model)

    def from_peft(  # type: ignore[override]
        self, peft_config: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module
    ) -> tuple[LoRAConfig, dict[str, torch.Tensor]]:
        """Our LoRA config and file keys from a PEFT LoRA directory (see :mod:`llm_adapters_lora.peft`)."""
        from .peft import from_peft

        return from_peft(peft_config, tensors, model)

    def combine(  # the optional method of llm_adapters.engine.combining
        self,
        model: nn.Module,
        adapters: list[str],
        weights: list[float],
        name: str,
        *,
        method: str = "cat",
        density: float | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        """Attach ``name``, a weighted combination of LoRA adapters (methods: see :mod:`llm_adapters_lora.combine`)."""
        from .combine import combine

        combine(model, adapters, weights, name, method=method, density=density, rank=rank, seed=seed)
