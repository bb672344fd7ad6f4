"""Small helpers shared by the LoRA tests."""

from __future__ import annotations

import torch
from torch import nn

from llm_adapters.engine import adapter_parameters


def randomise(model: nn.Module, name: str = "default", seed: int = 1, std: float = 0.1) -> None:
    """Give every parameter of adapter ``name`` random values (B is zero at initialisation, which would
    hide most mistakes); a DoRA magnitude is kept positive and near its initial norm."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, p in sorted(adapter_parameters(model, name).items()):
            noise = torch.randn(p.shape, generator=g).to(p.dtype)
            if key.endswith("magnitude"):
                p.mul_(1 + 0.2 * noise.tanh())
            else:
                p.copy_(std * noise)


def logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def token_ids(vocab: int = 128, shape: tuple[int, int] = (2, 9), seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))
