"""Model families: an architecture described as data.

A :class:`ModelFamily` says which transformers ``model_type`` values it covers, where the decoder blocks
are, and where each *role* lives inside a block. Adapter types name their default placements in roles
(``attn.q``, ``mlp.down``, ...), never in module names, so that every adapter works on every family.

Roles (the vocabulary adapters may use; a family maps the ones its architecture has):

=============  =========================================================
``attn.q``     query projection        ``attn.k``  key projection
``attn.v``     value projection        ``attn.o``  attention output projection
``attn.qkv``   fused q/k/v projection (see :class:`FusedProjection`)
``mlp.gate``   gated MLP gate          ``mlp.up``  MLP input (up) projection
``mlp.down``   MLP output projection   ``block``   the decoder block itself
``norm.attn``  norm before attention   ``norm.mlp`` norm before the MLP
=============  =========================================================

When a family maps ``attn.qkv`` to a fused projection, the roles ``attn.q``, ``attn.k`` and ``attn.v``
resolve to *parts* of it: an adapter on ``attn.q`` then sees only the query rows of the fused weight, laid
out as the family declares (three contiguous blocks as in GPT-2, or interleaved per head as in BLOOM and
GPT-NeoX).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # torch is imported where it is used, so that a family plugin loads without it
    import torch
    from torch import nn

ROLES: tuple[str, ...] = (
    "attn.q",
    "attn.k",
    "attn.v",
    "attn.o",
    "attn.qkv",
    "mlp.gate",
    "mlp.up",
    "mlp.down",
    "block",
    "norm.attn",
    "norm.mlp",
)
QKV_PARTS: tuple[str, ...] = ("q", "k", "v")


@dataclass(frozen=True)
class AttentionDims:
    """What prompt-based methods need to know about a model's attention.

    ``num_key_value_heads`` is the number of key/value heads the KV cache holds per layer (keys and values
    are ``(batch, num_key_value_heads, length, head_dim)``); it is smaller than ``num_attention_heads``
    under grouped-query or multi-query attention.
    """

    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int


@dataclass(frozen=True)
class FusedProjection:
    """How a fused q/k/v projection lays out its output features.

    ``layout``:
      * ``"contiguous"``: ``[q (H*d) | k (KV*d) | v (KV*d)]`` (GPT-2 ``c_attn``, Phi-3).
      * ``"per_head"``: grouped by key/value head. With ``r = H / KV`` query heads per key/value head, the
        output is viewed as ``(KV, r + 2, d)``: for each group ``g`` the rows of its ``r`` query heads, then
        its key head, then its value head. Without grouping (``r = 1``) that is ``(H, 3, d)``, each head's
        ``[q_h | k_h | v_h]`` (BLOOM, GPT-NeoX, Falcon without multi-query); with grouping it is Falcon-40B's
        layout; with a single key/value head it equals ``"contiguous"`` (Falcon-7B's multi-query).
    """

    layout: Literal["contiguous", "per_head"]

    def part_indices(self, part: str, dims: AttentionDims) -> torch.Tensor:
        """Output-feature indices (sorted, 1-D long) of ``part`` (``q``, ``k`` or ``v``)."""
        import torch

        if part not in QKV_PARTS:
            raise ValueError(f"unknown fused part {part!r}; expected one of {', '.join(QKV_PARTS)}")
        d, heads, kv = dims.head_dim, dims.num_attention_heads, dims.num_key_value_heads
        if self.layout == "contiguous":
            sizes = {"q": heads * d, "k": kv * d, "v": kv * d}
            start = {"q": 0, "k": heads * d, "v": heads * d + kv * d}[part]
            return torch.arange(start, start + sizes[part])
        if kv < 1 or heads % kv:
            raise ValueError(
                f"a per-head fused layout needs the {heads} attention heads to split evenly into groups per "
                f"key/value head, got {kv} key/value heads"
            )
        group = heads // kv  # r query heads per key/value head
        # output viewed as (KV, r + 2, d): group g holds r query heads, then one key and one value head
        width = {"q": group * d, "k": d, "v": d}[part]
        offset = {"q": 0, "k": group * d, "v": (group + 1) * d}[part]
        base = torch.arange(kv) * (group + 2) * d + offset  # (KV,)
        return (base[:, None] + torch.arange(width)[None, :]).reshape(-1)  # (KV * width,)


@dataclass(frozen=True)
class ModelFamily:
    """An architecture, as data.

    Args:
        name: short unique name (``"llama"``, ``"gpt2"``).
        model_types: the transformers ``config.model_type`` values this family covers.
        blocks: dotted path from the model to the ``ModuleList`` of decoder blocks (``"model.layers"``).
        roles: role -> dotted path *inside a block* (``{"attn.q": "self_attn.q_proj"}``). ``"block"`` is
            implicit. Map ``attn.qkv`` for a fused projection and declare its layout in ``fused``.
        fused: role -> :class:`FusedProjection` for roles whose module fuses several parts.
        config_keys: overrides for reading :class:`AttentionDims` from ``model.config`` (attribute names for
            ``num_layers``, ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads``,
            ``head_dim``); common spellings are tried otherwise.
        notes: free text shown by ``llm-adapters plugins`` (quirks worth knowing).
        tiny_config: keyword arguments for ``transformers.AutoConfig.for_model`` that build a tiny random
            model of this family (``{"model_type": "llama", "hidden_size": 64, ...}``); the conformance
            suite runs every adapter on it.
    """

    name: str
    model_types: tuple[str, ...]
    blocks: str
    roles: dict[str, str]
    fused: dict[str, FusedProjection] = field(default_factory=dict)
    config_keys: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    tiny_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown:
            raise ValueError(f"model family {self.name!r}: unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
        for role in self.fused:
            if role not in self.roles:
                raise ValueError(f"model family {self.name!r}: fused role {role!r} has no module path")

    # ---- attention geometry -------------------------------------------------------------------
    def dims(self, config: Any) -> AttentionDims:
        """Read the attention geometry from a transformers config."""

        def read(key: str, *candidates: str) -> int | None:
            names = (self.config_keys[key],) if key in self.config_keys else candidates
            for n in names:
                value = getattr(config, n, None)
                if value is not None:
                    return int(value)
            return None

        layers = read("num_layers", "num_hidden_layers", "n_layer", "num_layers")
        hidden = read("hidden_size", "hidden_size", "n_embd", "d_model", "word_embed_proj_dim")
        heads = read("num_attention_heads", "num_attention_heads", "n_head", "num_heads")
        if layers is None or hidden is None or heads is None:
            raise ValueError(
                f"model family {self.name!r}: cannot read layers / hidden size / heads from "
                f"{type(config).__name__}; set config_keys on the family"
            )
        kv = read("num_key_value_heads", "num_key_value_heads", "num_kv_heads") or heads
        head_dim = read("head_dim", "head_dim") or hidden // heads
        return AttentionDims(layers, hidden, heads, kv, head_dim)

    # ---- role resolution ------------------------------------------------------------------------
    def resolves(self, role: str) -> bool:
        """Whether this family can place something on ``role``."""
        if role == "block" or role in self.roles:
            return True
        return role.startswith("attn.") and role[5:] in QKV_PARTS and "attn.qkv" in self.fused

    def role_sites(self, model: nn.Module, role: str) -> list[tuple[str, str | None]]:
        """Every ``(module path, part)`` for ``role``, one per block; ``part`` is None for whole modules."""
        blocks = model.get_submodule(self.blocks)
        n = len(blocks)  # type: ignore[arg-type]
        if role == "block":
            return [(f"{self.blocks}.{i}", None) for i in range(n)]
        if role in self.roles:
            return [(f"{self.blocks}.{i}.{self.roles[role]}", None) for i in range(n)]
        if self.resolves(role):
            path = self.roles["attn.qkv"]
            return [(f"{self.blocks}.{i}.{path}", role[5:]) for i in range(n)]
        raise KeyError(role)

    def role_of(self, path: str) -> str | None:
        """The role the module at ``path`` (a dotted path from the model) plays, or None."""
        prefix = self.blocks + "."
        if not path.startswith(prefix):
            return None
        index, _, inner = path[len(prefix) :].partition(".")
        if not index.isdigit():
            return None
        if not inner:
            return "block"
        return next((role for role, sub in self.roles.items() if sub == inner), None)

    def part_indices(self, role_of_module: str, part: str, config: Any) -> torch.Tensor:
        return self.fused[role_of_module].part_indices(part, self.dims(config))
