"""The fusion layer: attention over the outputs of N frozen adapters at one site.

AdapterFusion comes from Pfeiffer et al., "AdapterFusion: Non-Destructive Task Composition for Transfer
Learning" (EACL 2021, arXiv 2005.00247). At each site the N adapters, each trained on its own task, stay
frozen; only the Query, Key and Value projections of the fusion learn.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from llm_adapters import AdapterLayer

#: standard deviation of the Query / Key initialisation (BERT's initializer_range)
QK_STD = 0.02
#: scale of the random off-diagonal entries of the Value initialisation (the paper's "small norm (1e-6)")
V_NOISE = 1e-6


class FusionLayer(AdapterLayer):
    """Attention over the fused adapters' outputs, with ``h`` as the query (Pfeiffer et al., 2021, eq. 3-5).

    ``h`` is what the adapters read: the module's output (kind ``post``, e.g. the series AdapterP on
    ``mlp.down``, whose output is the feed-forward output the paper takes as query), its input (kind ``pre``),
    or, for parallel adapters (kind ``parallel``), the module's output ``W x + b``. With ``o_i`` the new
    hidden state adapter ``i`` would give on its own (``h + f_i(h)`` for series, ``h + delta_i(x)`` for
    parallel) and ``z_i = o_i - h`` its contribution::

        v_i = z_i                   (residual_before = false, the paper's default)
        v_i = o_i                   (residual_before = true)
        s_i = (h W_Q) . (v_i W_K) / T
        a   = softmax_i(s)
        out = sum_i a_i (v_i W_V)   (+ h when residual_before = false)

    ``W_Q``, ``W_K``, ``W_V`` are ``d x d`` without bias (``W = linear.weight.T``). Initialisation, as the paper
    describes it: Query and Key random (``N(0, 0.02)``), Value the identity plus off-diagonal noise of norm
    ``1e-6``, so that the scores start near 0, the attention near uniform and the fusion near the mean of the
    adapters' outputs. The temperature is a fixed config value (the paper's code anneals it; not done here),
    and the paper's regulariser ``lambda ||I - W_V||^2`` is not applied.

    The fused layers are held outside this module's parameters and state dict (so the core neither trains,
    perturbs nor saves them: the fusion's file holds only Query, Key and Value), frozen and always in eval
    mode; moving or casting this layer (``.to``, ``.half``) moves and casts them too.

    Args:
        features: ``d``, the size of ``h``.
        kind: ``pre``, ``post`` or ``parallel``: the fused layers' kind at this site.
        fused: the N frozen adapter layers.
        temperature: ``T > 0``.
        residual_before: see above.
    """

    mergeable = False
    uses_base_output = True  # parallel kind: the query is the module's output

    def __init__(
        self, features: int, kind: str, fused: list[AdapterLayer], *, temperature: float, residual_before: bool
    ) -> None:
        super().__init__()
        if kind not in ("pre", "post", "parallel"):
            raise ValueError(f"fusion: unknown layer kind {kind!r}")
        self.kind = kind
        self.temperature = float(temperature)
        self.residual_before = bool(residual_before)
        self.query = nn.Linear(features, features, bias=False)
        self.key = nn.Linear(features, features, bias=False)
        self.value = nn.Linear(features, features, bias=False)
        # not registered as submodules: outside parameters(), state_dict() and train()
        object.__setattr__(self, "_fused", tuple(fused))
        self.reset_parameters()

    @property
    def fused(self) -> tuple[AdapterLayer, ...]:
        """The frozen adapter layers, in the order of the config's ``adapters``."""
        return self._fused

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.query.weight, mean=0.0, std=QK_STD)
        nn.init.normal_(self.key.weight, mean=0.0, std=QK_STD)
        w = self.value.weight
        w.copy_(torch.randn_like(w) * V_NOISE)
        w.fill_diagonal_(1.0)

    def _apply(self, fn: Callable[..., object], recurse: bool = True) -> FusionLayer:  # type: ignore[override]
        for layer in self._fused:
            layer._apply(fn, recurse)
        return super()._apply(fn, recurse)  # type: ignore[return-value]

    def _attend(self, h: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        # h: (..., d) the query input; o: (..., N, d) the adapters' outputs o_i
        v = o if self.residual_before else o - h.unsqueeze(-2)  # (..., N, d): o_i or z_i
        q = self.query(h)  # (..., d)
        k = self.key(v)  # (..., N, d)
        scores = (k @ q.unsqueeze(-1)).squeeze(-1) / self.temperature  # (..., N)
        a = torch.softmax(scores, dim=-1)  # (..., N)
        out = (a.unsqueeze(-1) * self.value(v)).sum(dim=-2)  # (..., d)
        return out if self.residual_before else h + out

    def forward(self, h: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "parallel":
            # h is the module's input x (..., d_in); the query is its output y (..., d); returns a delta
            assert base_output is not None
            x, y = h, base_output.to(h.dtype)
            o = torch.stack([y + layer(x, y) for layer in self._fused], dim=-2)  # (..., N, d)
            return self._attend(y, o) - y
        # pre / post: h (..., d) -> the new h; each fused layer returns o_i = h + f_i(h)
        o = torch.stack([layer(h) for layer in self._fused], dim=-2)  # (..., N, d)
        return self._attend(h, o)

    def extra_repr(self) -> str:
        return (
            f"kind={self.kind}, adapters={len(self._fused)}, temperature={self.temperature}, "
            f"residual_before={self.residual_before}"
        )
