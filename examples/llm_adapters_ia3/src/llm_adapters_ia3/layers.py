"""The (IA)^3 layers: one learned vector that rescales a module's output or input, channel by channel.

(IA)^3, "Infused Adapter by Inhibiting and Amplifying Inner Activations" (Liu et al., 2022, "Few-Shot
Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context Learning", arXiv 2205.05638, section
3.3), learns three vectors per block and multiplies them elementwise into the attention's keys and values and
into the feed-forward's hidden activation::

    softmax(Q (l_k * K)^T / sqrt(d)) (l_v * V)       l_k, l_v: (d_kv,)
    (l_ff * act(W_1 x)) W_2                          l_ff: (d_ff,)

Here each vector is one layer on one linear module ``y = W x + b`` (``W: (d_out, d_in)``):

* on the key and value projections, of kind ``post``: ``y' = l * y = diag(l) W x + l * b``;
* on the feed-forward's down projection, of kind ``pre``: ``y' = W (l * x) + b = W diag(l) x + b``.

Every vector starts at ones, so the adapted model equals the base model at initialisation. Both maps are
linear changes of the module, so the layers declare ``mergeable = True`` and give the core their vector
(:meth:`IA3OutputScale.output_map`, :meth:`IA3InputScale.input_map`); the core folds it into the base
weight and bias (``W' = diag(l) W``, ``b' = l * b`` for ``post``; ``W' = W diag(l)`` for ``pre``).
"""

from __future__ import annotations

import torch
from torch import nn

from llm_adapters import AdapterLayer


class IA3Scale(AdapterLayer):
    """A learned vector ``l`` of shape ``(channels,)`` multiplied elementwise into the last dimension.

    Args:
        channels: the number of channels scaled: ``d_out`` (of the part, on a fused projection) for
            ``post``, ``d_in`` for ``pre``.
        init_std: 0 starts every entry at 1; a positive value draws ``l = 1 + init_std * N(0, 1)`` (tests).
    """

    mergeable = True  # l * y and W (l * x) are linear changes of the base module: the core folds them

    def __init__(self, channels: int, init_std: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))  # l: (channels,), ones: the identity
        if init_std > 0:
            with torch.no_grad():
                self.scale.add_(init_std * torch.randn(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.scale  # h: (..., channels) -> (..., channels)

    def extra_repr(self) -> str:
        return f"channels={self.scale.shape[0]}"


class IA3OutputScale(IA3Scale):
    """Kind ``post``, on a key or value projection: ``y' = l * y`` with y: ``(..., d_out)``, l: ``(d_out,)``.

    Merged by the core as ``W' = diag(l) W`` (each output row ``i`` of ``W`` times ``l_i``) and ``b' = l * b``:
    the bias is part of ``y``, so it is scaled too.
    """

    def output_map(self) -> torch.Tensor:
        """``l``: ``(d_out,)``, the per-channel map of the module output (no shift)."""
        return self.scale


class IA3InputScale(IA3Scale):
    """Kind ``pre``, on the feed-forward's down projection: ``x' = l * x`` with x: ``(..., d_in)``, l:
    ``(d_in,)`` (``x`` is the hidden activation ``act(W_1 x)``, or ``act(gate) * up`` in a gated MLP).

    Merged by the core as ``W' = W diag(l)`` (each input column ``j`` of ``W`` times ``l_j``); the bias is
    added after the product, so it does not change.
    """

    def input_map(self) -> torch.Tensor:
        """``l``: ``(d_in,)``, the per-channel map of the module input."""
        return self.scale
