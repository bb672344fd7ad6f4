"""Shared helpers of the prompt-method tests."""

from __future__ import annotations

from importlib.metadata import entry_points
from types import ModuleType

import torch
from torch import nn

from llm_adapters import ModelFamily

FAMILIES_DISTRIBUTION = "llm-adapters-families"


def _family_modules() -> list[ModuleType]:
    eps = [ep for ep in entry_points(group="llm_adapters") if ep.dist and ep.dist.name == FAMILIES_DISTRIBUTION]
    return [ep.load() for ep in sorted(eps, key=lambda ep: ep.name)]


#: every model family the families plugin provides, one module per family
FAMILY_MODULES: list[ModuleType] = _family_modules()


def family_objects() -> dict[str, ModelFamily]:
    found: list[ModelFamily] = []
    for module in FAMILY_MODULES:
        module.register_model_families(found.append)
    return {f.name: f for f in found if f.tiny_config}


FAMILIES: list[str] = sorted(family_objects())


def inputs(model: nn.Module, batch: int = 2, length: int = 7, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, min(model.config.vocab_size, 100), (batch, length), generator=g)


def logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None = None, **kw: object) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, **kw).logits
