"""Inverted dropout for the input of a low-rank branch, cheap on the CPU.

``nn.Dropout`` draws one random float per element; on the CPU that draw costs far more than the rest of a
LoRA branch at small ranks (with dropout 0.05 on q, k, v, up and down it is a third of LoRA's training
overhead on SmolLM2-135M). Here one 64-bit draw gives four 16-bit uniforms, and an element is kept when its
uniform is at least ``t = round(p * 2**16)``: the keep probability is ``1 - t / 2**16`` exactly, within
``2**-17`` of ``1 - p``, and the kept elements are scaled by its inverse, so the branch stays unbiased. The keep-mask
is written by the comparison straight into a 0 / 1 tensor of the input's dtype, so that forward and backward
multiply by it as floats (a boolean mask would be converted on each use, and costs several times as much).
The scale is not applied here: :meth:`BranchDropout.forward` returns it, and the caller folds it into the
branch's own scale on the rank-r side, which costs nothing. Off the CPU, ``torch.nn.functional.dropout``
(fused on accelerators) is used as is. Random numbers come from torch's default generator, so
``torch.manual_seed`` makes runs repeatable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16


class BranchDropout(nn.Module):
    """``forward(x) -> (x * mask, factor)``: the branch input with dropped elements zeroed, and the factor
    (``1 / keep probability``) that the caller must apply to the branch's output; ``(x, 1.0)`` in eval mode.

    Args:
        p: the probability of dropping an element, in (0, 1).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 < p < 1.0:
            raise ValueError(f"dropout probability must be in (0, 1), got {p}")
        self.p = float(p)
        self.threshold = round(self.p * _LEVELS)  # keep u16 >= threshold
        self.keep = (_LEVELS - self.threshold) / _LEVELS

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        if not self.training or self.threshold == 0:
            return x, 1.0
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True), 1.0
        return x * self.mask(x), 1.0 / self.keep

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """A keep-mask shaped like ``x``, of its dtype: each element 1 with probability ``self.keep``, else 0."""
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
        words.random_(-(2**63), 2**63 - 1)  # 64 random bits per word
        u16 = words.view(torch.int16)  # (4 * words,): uniform on [-2**15, 2**15)
        if u16.numel() != n:
            u16 = u16[:n]
        keep = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        return torch.ge(u16.view(x.shape), self.threshold - (1 << 15), out=keep)  # 1. where kept

    def extra_repr(self) -> str:
        return f"p={self.p:g}"
