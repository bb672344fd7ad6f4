"""The parallel adapter layer: a bottleneck beside a module, added to its output.

Parallel adapters come from He et al., "Towards a Unified View of Parameter-Efficient Transfer Learning"
(ICLR 2022), here per wrapped linear layer as in Hu et al., "LLM-Adapters" (EMNLP 2023, arXiv 2304.01933),
whose placements and defaults this package follows.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.activations import ACT2FN

from llm_adapters import AdapterLayer

from .config import ParallelConfig

#: standard deviation of the "bert" initialisation (BERT's initializer_range)
BERT_STD = 0.02


class ParallelLayer(AdapterLayer):
    """``y = W x + b + s * Up(act(Down(dropout(x))))``: this layer returns the added term.

    Down (``d_in -> m``) and Up (``m -> d_out``) have no bias; ``s`` is a constant or, with
    ``scaling="learned"``, one trainable scalar starting at 1. Dropout acts on the adapter's input only, so
    the base module sees ``x`` unchanged. The function is non-linear, so it cannot be merged into ``W``.

    Args:
        in_features: ``d_in``, the wrapped module's input size.
        out_features: ``d_out``, its output size (the part's size on a fused projection).
        config: bottleneck size ``m``, activation, dropout, scaling and initialisation.
    """

    mergeable = False

    def __init__(self, in_features: int, out_features: int, config: ParallelConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.down = nn.Linear(in_features, config.bottleneck_size, bias=False)  # weight (m, d_in)
        self.act = ACT2FN[config.non_linearity]
        self.up = nn.Linear(config.bottleneck_size, out_features, bias=False)  # weight (d_out, m)
        self.learned = config.scaling == "learned"
        self.scaling = 1.0 if self.learned else float(config.scaling)
        self.scale = nn.Parameter(torch.ones(1)) if self.learned else None
        reset_bottleneck(self.down, self.up, config.init)

    def forward(self, x: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        # x: (..., d_in) -> (..., d_out)
        z = self.up(self.act(self.down(self.dropout(x))))
        # the learned scale follows the activations' dtype so that it never promotes half precision
        s = self.scale.to(z.dtype) if self.scale is not None else self.scaling
        return s * z

    def extra_repr(self) -> str:
        return f"scaling={'learned' if self.learned else self.scaling}"


@torch.no_grad()
def reset_bottleneck(down: nn.Linear, up: nn.Linear, init: str) -> None:
    """``bert``: Down, Up ~ N(0, 0.02). ``identity``: Down Kaiming-uniform (a = sqrt 5, nn.Linear's own
    default), Up = 0, so that the added term is 0 and the adapted module starts as the base module."""
    if init == "bert":
        nn.init.normal_(down.weight, mean=0.0, std=BERT_STD)
        nn.init.normal_(up.weight, mean=0.0, std=BERT_STD)
    elif init == "identity":
        nn.init.kaiming_uniform_(down.weight, a=math.sqrt(5))
        nn.init.zeros_(up.weight)
    else:  # the config rejects other names; this guards direct callers
        raise ValueError(f"adapter 'parallel': unknown init {init!r}; use 'bert' or 'identity'")
