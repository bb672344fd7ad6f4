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


class SharedInput:
    """The LoRA layers of one adapter that read one input: q, k and v of an attention; gate and up of an MLP; the
    parts of a fused projection. In a forward, the first of them to run for an input does the work they share,
    and the others take their part of it:

    * one dropout mask: each branch still sees inverted dropout of its input with probability ``p`` (the
      expectation is unchanged); the branches of one input are dropped alike;
    * one product for their down-projections (LoRA layers on the fused path, :meth:`LoRALayer.add_delta`)::

          [h_1 | ... | h_k] = drop(x) [A_1; ...; A_k]^T        x: (N, d_in), A_i: (r_i, d_in), h_i: (N, r_i)

      which is ``h_i = A_i drop(x)`` for each member, in one matrix product instead of k; backward, the input's
      gradient is one product ``[dh_1 | ... | dh_k] [A_1; ...; A_k]`` instead of k products and k - 1 sums.

    An input is recognised by identity (the same tensor object, unmodified since: its version counter). Anything
    else (a row subset under per-row routing, a cast input, a tensor without a version counter) is computed by
    the layer alone. The group holds the input only until every member has taken its part.
    """

    def __init__(self) -> None:
        self.members: list[LoRALayer] = []
        self._clear()

    def _clear(self) -> None:
        self._x: torch.Tensor | None = None
        self._version = -1
        self._dropped: tuple[torch.Tensor, float] | None = None
        self._down: dict[int, torch.Tensor] | None = None  # id(member) -> h_i
        self._served: set[int] = set()

    def _version_of(self, x: torch.Tensor) -> int | None:
        try:
            return x._version
        except RuntimeError:  # inference tensors keep no version counter
            return None

    def _entry(self, layer: LoRALayer, x: torch.Tensor) -> bool:
        """Make the cache hold ``x``; True when ``layer`` may take its part from it (False: compute alone)."""
        if len(self.members) < 2:
            return False
        version = self._version_of(x)
        if version is None:
            return False
        if self._x is x and self._version == version and id(layer) not in self._served:
            return True
        self._clear()
        self._x, self._version = x, version
        return True

    def _serve(self, layer: LoRALayer) -> None:
        self._served.add(id(layer))
        if len(self._served) >= len(self.members):
            self._clear()  # every member served: hold no activation past this forward

    def dropped(self, layer: LoRALayer, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``layer``'s ``(drop(x) / factor, factor)``, drawn once for the group."""
        dropout = layer.dropout
        if dropout is None or not dropout.training or not self._entry(layer, x):
            return layer.dropped_alone(x)
        if self._dropped is None:
            self._dropped = dropout(x)
        out = self._dropped
        self._serve(layer)
        return out

    def down(self, layer: LoRALayer, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(A drop(x) / factor, factor)`` for ``layer``: the down-projections of all members in one product."""
        if not self._entry(layer, x):
            return layer.down_alone(x)
        if self._dropped is None:
            self._dropped = layer.dropped_alone(x)
        xd, factor = self._dropped
        if self._down is None:
            weights = [m.lora_A for m in self.members]  # (r_i, d_in) each
            self._down = {}  # members of mixed dtypes: each its own product below
            if all(w.dtype == xd.dtype for w in weights):
                h = F.linear(xd, torch.cat(weights))  # (..., sum r_i)
                parts = h.split([w.shape[0] for w in weights], dim=-1)  # (..., r_i) each
                self._down = {id(m): part for m, part in zip(self.members, parts, strict=True)}
        out = self._down.get(id(layer))
        if out is None:
            out = F.linear(xd, layer.lora_A)
        self._serve(layer)
        return out, factor


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
        #: set by the adapter type when other layers of the adapter read the same input (see SharedInput)
        self.shared_input: SharedInput | None = None

    def dropped_alone(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(drop(x) / factor, factor)``: the input with dropped elements zeroed and the inverted-dropout factor
        to fold into the scale; ``(x, 1.0)`` without dropout. A mask of this layer's own."""
        if self.dropout is None:
            return x, 1.0
        return self.dropout(x)

    def down_alone(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``(A drop(x) / factor, factor)`` with a mask of this layer's own: (..., r)."""
        xd, factor = self.dropped_alone(x)
        return F.linear(xd, self.lora_A), factor

    def _dropped(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """:meth:`dropped_alone`, with the mask shared with the layers that read the same input."""
        if self.shared_input is not None and self.dropout is not None:
            return self.shared_input.dropped(self, x)
        return self.dropped_alone(x)

    def _branch(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        """``scale * B A x`` for x: (..., d_in) -> (..., d_out); the scale is applied on the rank-r side."""
        h = F.linear(x, self.lora_A)  # (..., r)
        return F.linear(h * scale, self.lora_B)  # (..., d_out)

    def forward(self, x: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        x, factor = self._dropped(x)  # drop(x) = x * factor; the factor is folded into the scale
        return self._branch(x, self.scale * factor)

    def add_delta(self, y: torch.Tensor, x: torch.Tensor, base_output: torch.Tensor | None) -> torch.Tensor:
        """``y + s B A drop(x)`` with the addition inside the last product: ``addmm(y, A drop(x), B^T, alpha=s)``
        saves the separate scaling of ``A x`` and the pass that adds the delta to ``y``. ``A drop(x)`` comes from
        one product for all the layers that read ``x`` (:class:`SharedInput`)."""
        if self.shared_input is not None:
            h, factor = self.shared_input.down(self, x)  # (..., r)
        else:
            h, factor = self.down_alone(x)  # (..., r)
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
