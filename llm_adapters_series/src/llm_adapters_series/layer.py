"""The series adapter layer: a residual bottleneck on a module's input (pre) or output (post).

Series adapters come from Houlsby et al., "Parameter-Efficient Transfer Learning for NLP" (ICML 2019);
the single adapter after the feed-forward block is Pfeiffer et al., "AdapterFusion" (EACL 2021). Their use on
LLMs, the placements and the defaults follow Hu et al., "LLM-Adapters" (EMNLP 2023, arXiv 2304.01933).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers.activations import ACT2FN

from llm_adapters import AdapterLayer

from .config import SeriesConfig

#: standard deviation of the "bert" initialisation (BERT's initializer_range)
BERT_STD = 0.02


class SeriesLayer(AdapterLayer):
    """``h -> h + A(h)`` with ``A(h) = s * Up(act(Down(dropout(h))))``.

    ``h`` is the wrapped module's input (kind ``pre``: ``y = W (x + A(x)) + b``) or its output (kind
    ``post``: ``y = h + A(h)`` with ``h = W x + b``); either way ``A`` maps ``d -> d``. Down (``d -> m``) and
    Up (``m -> d``) have no bias; ``s`` is a constant or, with ``scaling="learned"``, one trainable scalar
    starting at 1. Dropout acts on the adapter's input only, so the residual path carries ``h`` unchanged.

    Args:
        features: ``d``, the size of the vector the adapter reads and writes.
        config: bottleneck size ``m``, activation, dropout, scaling and initialisation.
    """

    def __init__(self, features: int, config: SeriesConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.down = nn.Linear(features, config.bottleneck_size, bias=False)  # weight (m, d)
        self.act = ACT2FN[config.non_linearity]
        self.up = nn.Linear(config.bottleneck_size, features, bias=False)  # weight (d, m)
        self.learned = config.scaling == "learned"
        self.scaling = 1.0 if self.learned else float(config.scaling)
        self.scale = nn.Parameter(torch.ones(1)) if self.learned else None
        reset_bottleneck(self.down, self.up, config.init)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (..., d)
        z = self.up(self.act(self.down(self.dropout(h))))  # (..., m) -> (..., d)
        if self.scale is None:
            return torch.add(h, z, alpha=self.scaling)  # h + s z in one pass
        # the learned scale follows the activations' dtype so that it never promotes half precision
        return h + self.scale.to(z.dtype) * z

    def extra_repr(self) -> str:
        return f"scaling={'learned' if self.learned else self.scaling}"


@torch.no_grad()
def reset_bottleneck(down: nn.Linear, up: nn.Linear, init: str) -> None:
    """``bert``: Down, Up ~ N(0, 0.02). ``identity``: Down Kaiming-uniform (a = sqrt 5, nn.Linear's own
    default), Up = 0, so that ``A = 0`` and the adapted module starts as the base module."""
    if init == "bert":
        nn.init.normal_(down.weight, mean=0.0, std=BERT_STD)
        nn.init.normal_(up.weight, mean=0.0, std=BERT_STD)
    elif init == "identity":
        nn.init.kaiming_uniform_(down.weight, a=math.sqrt(5))
        nn.init.zeros_(up.weight)
    else:  # the config rejects other names; this guards direct callers
        raise ValueError(f"adapter 'series': unknown init {init!r}; use 'bert' or 'identity'")
