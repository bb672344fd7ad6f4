"""The LoRA and DoRA layers: one low-rank update of one linear map.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models", arXiv 2106.09685), for a
frozen base ``y = W x + b`` with ``W: (d_out, d_in)``::

    y = W x + b + s * B A drop(x)          A: (r, d_in), B: (d_out, r)
    s = alpha / r                          (rsLoRA, Kalajdzievski 2023, arXiv 2312.03732: alpha / sqrt(r))

``A`` starts Kaiming-uniform (a = sqrt(5), the initialisation of ``nn.Linear`` that the reference system
uses), ``B`` starts at zero, so the adapted model equals the base model at initialisation. The update merges
exactly into the weight: ``W' = W + s B A``.

DoRA (Liu et al., 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation", arXiv 2402.09353, eq. 5)::

    W' = m * (W + s B A) / ||W + s B A||_c          m: (d_out,), ||.||_c: the L2 norm of each output row

with ``m`` initialised to ``||W||_c`` (so again W' = W at initialisation). As the paper suggests (section
4.3) the norm is treated as a constant: it receives no gradient. Written as a delta on the base output
(``n = ||W + s B A||_c``, ``f = m / n``)::

    y' = W x + b + (f - 1) * (W x) + f * s * B A x

``W x`` is the base output less its bias, so DoRA costs no second matmul with ``W``. When dropout is active
(training, p > 0) the DoRA branch sees ``drop(x)`` throughout, ``(f - 1) * W drop(x) + f * s * B A drop(x)``,
which is what HF PEFT computes too, so trained adapters carry over between the two. Dropout is inverted
dropout (:mod:`llm_adapters_lora.dropout`), its ``1 / keep`` factor folded into the rank-r scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from llm_adapters import AdapterLayer

from .dropout import BranchDropout


class SharedDropout:
    """One dropout mask for the LoRA layers of one adapter that read the same input (q, k and v of one
    attention; gate and up of one MLP; the parts of one fused projection): the first of them to run in a
    forward draws the mask, the others reuse the masked input. Each branch still sees inverted dropout of its
    input with probability ``p`` (the expectation is unchanged); the branches of one input are dropped alike,
    which saves drawing and applying the mask again (about a third of LoRA's dropout cost on LLaMA-style
    models at q, k, v, up, down). An input is recognised by identity (the same tensor object, unmodified);
    anything else (a row subset under per-row routing, a cast input) simply draws its own mask.
    """

    def __init__(self) -> None:
        self.members = 0
        self._clear()

    def _clear(self) -> None:
        self._x: torch.Tensor | None = None
        self._version = -1
        self._out: tuple[torch.Tensor, float] | None = None
        self._served: set[int] = set()

    def __call__(self, layer: LoRALayer, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        dropout = layer.dropout
        assert dropout is not None
        if self.members < 2 or not dropout.training:
            return dropout(x)
        try:
            version = x._version
        except RuntimeError:  # inference tensors keep no version counter
            return dropout(x)
        if self._x is x and self._version == version and id(layer) not in self._served and self._out is not None:
            out = self._out
            self._served.add(id(layer))
            if len(self._served) >= self.members:
                self._clear()  # every member served: hold no activation past this forward
            return out
        out = dropout(x)
        self._x, self._version, self._out, self._served = x, version, out, {id(layer)}
        return out


class LoRALayer(AdapterLayer):
    """``delta(x) = s * B A drop(x)``, a layer of kind "parallel".

    Args:
        d_in: input features of the base map.
        d_out: output features of the base map (of the part, on a fused projection).
        r: rank, >= 1.
        scale: ``s`` (alpha / r, or alpha / sqrt(r)).
        dropout: dropout probability on the branch's input; 0 skips dropout entirely.
    """

    mergeable = True

    def __init__(self, d_in: int, d_out: int, r: int, scale: float, dropout: float) -> None:
        super().__init__()
        self.scale = float(scale)
        self.lora_A = nn.Parameter(torch.empty(r, d_in))  # (r, d_in)
        self.lora_B = nn.Parameter(torch.zeros(d_out, r))  # (d_out, r): zero, so delta = 0 at init
        # nn.Linear's default initialisation, as in the reference system's LoRA
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = BranchDropout(dropout) if dropout > 0 else None  # None: no work at all at p = 0
        #: set by the adapter type when other layers of the adapter read the same input (see SharedDropout)
        self.shared_dropout: SharedDropout | None = None

    def _dropped(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(drop(x) / factor, factor)``: the input with dropped elements zeroed and the inverted-dropout factor
        to fold into the scale; ``(x, 1.0)`` without dropout."""
        if self.dropout is None:
            return x, 1.0
        if self.shared_dropout is not None:
            return self.shared_dropout(self, x)
        return self.dropout(x)

    def _branch(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        """``scale * B A x`` for x: (..., d_in) -> (..., d_out); the scale is applied on the rank-r side."""
        h = F.linear(x, self.lora_A)  # (..., r)
        return F.linear(h * scale, self.lora_B)  # (..., d_out)

    def forward(self, x: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        x, factor = self._dropped(x)  # drop(x) = x * factor; the factor is folded into the scale
        return self._branch(x, self.scale * factor)

    def add_delta(self, y: torch.Tensor, x: torch.Tensor, base_output: torch.Tensor | None) -> torch.Tensor:
        """``y + s B A drop(x)`` with the addition inside the last product: ``addmm(y, A drop(x), B^T, alpha=s)``
        saves the separate scaling of ``A x`` and the pass that adds the delta to ``y``."""
        x, factor = self._dropped(x)
        h = F.linear(x, self.lora_A)  # (..., r)
        d_out = y.shape[-1]
        out = torch.addmm(y.reshape(-1, d_out), h.reshape(-1, h.shape[-1]), self.lora_B.t(), alpha=self.scale * factor)
        return out.view(y.shape)  # (..., d_out)

    def lora_weight(self) -> torch.Tensor:
        """``s * B A``: (d_out, d_in)."""
        return (self.lora_B @ self.lora_A) * self.scale

    def delta_weight(self) -> torch.Tensor:
        """The change to the base weight: ``s * B A``, (d_out, d_in)."""
        return self.lora_weight()

    def extra_repr(self) -> str:
        r, d_in = self.lora_A.shape
        p = 0.0 if self.dropout is None else self.dropout.p
        return f"d_in={d_in}, d_out={self.lora_B.shape[0]}, r={r}, scale={self.scale:g}, dropout={p:g}"


class DoRALayer(LoRALayer):
    """DoRA as a delta on the base output: ``(f - 1) * W x + f * s * B A x`` with ``f = m / ||W + s B A||_c``.

    Args:
        weight: returns the live base weight, (d_out, d_in) (the core's ``Site.weight``).
        bias: returns the live base bias, (d_out,), or None (the core's ``Site.bias``).
        other arguments as :class:`LoRALayer`.
    """

    uses_base_output = True
    delta_uses_base_weight = True
    add_delta = AdapterLayer.add_delta  # DoRA rescales the base output too: no fused addition

    def __init__(
        self,
        d_in: int,
        d_out: int,
        r: int,
        scale: float,
        dropout: float,
        weight: Callable[[], torch.Tensor],
        bias: Callable[[], torch.Tensor | None],
    ) -> None:
        super().__init__(d_in, d_out, r, scale, dropout)
        self._weight = weight
        self._bias = bias
        with torch.no_grad():
            w = weight()  # (d_out, d_in)
            # m = ||W||_c, which is ||W + s B A||_c at initialisation since B = 0
            self.magnitude = nn.Parameter(torch.linalg.vector_norm(w, dim=1, dtype=torch.float32))  # (d_out,)

    @torch.no_grad()
    def _column_norm(self, w: torch.Tensor) -> torch.Tensor:
        """``||W + s B A||_c``: (d_out,), outside the autograd graph (DoRA section 4.3)."""
        return torch.linalg.vector_norm(w + self.lora_weight(), dim=1)

    def forward(self, x: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        w = self._weight().to(x.dtype)  # (d_out, d_in)
        f = self.magnitude / self._column_norm(w)  # (d_out,)
        if self.dropout is not None and self.training:
            x, factor = self._dropped(x)  # drop(x) = x * factor
            wx = F.linear(x, w)  # (..., d_out): W drop(x) / factor
        else:
            if base_output is None:
                raise ValueError("DoRALayer needs the base output (the wrapper passes it: uses_base_output)")
            factor = 1.0
            b = self._bias()
            wx = base_output if b is None else base_output - b.to(base_output.dtype)  # (..., d_out): W x
        return ((f - 1) * factor) * wx + f * self._branch(x, self.scale * factor)  # (..., d_out)

    def delta_weight(self) -> torch.Tensor:
        """``W' - W = (f - 1) W + f s B A``: (d_out, d_in), with ``f`` from the current base weight."""
        lora = self.lora_weight()  # (d_out, d_in)
        w = self._weight().to(lora.dtype)
        f = (self.magnitude / torch.linalg.vector_norm(w + lora, dim=1))[:, None]  # (d_out, 1)
        return (f - 1) * w + f * lora
