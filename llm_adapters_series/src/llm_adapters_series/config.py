"""The ``series`` adapter config: validated, every field described.

Where the adapter goes is said in one of three ways, most specific first:

* ``placement``: explicit ``"<target>:<kind>"`` strings, ``<target>`` a role (``attn.o``) or a module-name
  suffix (``down_proj``), ``<kind>`` ``pre`` (on the module's input) or ``post`` (on its output);
* ``target_modules``: roles, module-name suffixes or one regex, the kind derived from the role each module
  plays: MLP input projections (``mlp.gate``, ``mlp.up``) get ``pre``, everything else ``post``;
* ``variant``: ``adapterh`` or ``adapterp``, the two default placements of the reference system.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_serializer
from pydantic_core import PydanticCustomError

from llm_adapters import AdapterConfig

Kind = Literal["pre", "post"]

#: The kind a site gets from the role its module plays (``target_modules``); other roles get ``post``.
KIND_BY_ROLE: tuple[tuple[str, Kind], ...] = (("mlp.gate", "pre"), ("mlp.up", "pre"))

#: Default placements, in roles: (role, kind, optional). An optional role is skipped on families without it.
VARIANTS: dict[str, tuple[tuple[str, Kind, bool], ...]] = {
    # Houlsby-style, as the reference places it: pre-adapters on the MLP input projections (the gate only where
    # the MLP is gated), a post-adapter on the MLP output projection
    "adapterh": (("mlp.gate", "pre", True), ("mlp.up", "pre", False), ("mlp.down", "post", False)),
    # Pfeiffer-style: one post-adapter after the MLP output projection (the paper's best series placement)
    "adapterp": (("mlp.down", "post", False),),
}


class SeriesConfig(AdapterConfig):
    """Config of a series (bottleneck) adapter.

    Defaults are the reference system's (``BottleneckConfig`` as ``finetune.py`` uses it): bottleneck 256,
    tanh, no dropout, scale 1, BERT-style initialisation, AdapterH placement. The paper's reported "Series"
    results use ``variant="adapterp"``.
    """

    type: Literal["series"] = Field("series", description="The adapter type: always 'series'.")
    bottleneck_size: int = Field(256, ge=1, description="Width m of the bottleneck: Down is d x m, Up is m x d.")
    non_linearity: str = Field(
        "tanh",
        description="Activation between Down and Up: any name in transformers' ACT2FN (tanh, relu, gelu, silu, ...).",
    )
    dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Dropout probability on the adapter's input only (training only; 0 skips it).",
    )
    scaling: float | Literal["learned"] = Field(
        1.0,
        description=(
            "Factor s on the adapter's output: a positive number (integers accepted), or 'learned' for one "
            "trainable scalar per adapted module, starting at 1."
        ),
    )
    init: Literal["bert", "identity"] = Field(
        "bert",
        description=(
            "Initialisation: 'bert' = Down and Up ~ N(0, 0.02) (the reference's default; the adapter starts as a "
            "small perturbation, not the identity); 'identity' = Down Kaiming-uniform (a=sqrt(5)), Up = 0, so "
            "the adapted model starts exactly as the base model (the reference's 'mam_adapter', accepted as an "
            "alias)."
        ),
    )
    placement: list[str] | None = Field(
        None,
        description=(
            "Explicit placement: '<target>:<kind>' strings, <target> a role (attn.o, mlp.down, ...) or a "
            "module-name suffix (o_proj, mlp.c_proj), <kind> 'pre' (on the module's input) or 'post' (on its "
            "output); e.g. ['attn.o:post'] for after the attention output (a comma-separated string is accepted). "
            "Excludes target_modules."
        ),
    )
    variant: Literal["adapterh", "adapterp"] = Field(
        "adapterh",
        description=(
            "Default placement, used when neither target_modules nor placement is given: 'adapterh' = pre on "
            "mlp.gate (where the MLP is gated) and mlp.up, post on mlp.down; 'adapterp' = post on mlp.down only. "
            "The default is 'adapterh' because it is what the reference system does when no option is given; "
            "the paper found 'adapterp' better and reports it as 'Series'."
        ),
    )

    # ---- field checks -------------------------------------------------------------------------------
    @field_validator("non_linearity", mode="before")
    @classmethod
    def _known_activation(cls, value: Any) -> Any:
        # imported here, not at module level: importing the config (say, to register the adapter type for
        # `llm-adapters plugins`) stays free of transformers and torch
        from transformers.activations import ACT2FN

        if not isinstance(value, str) or value.strip().lower() not in ACT2FN:
            raise PydanticCustomError(
                "unknown_activation",
                "not an activation transformers knows; choose one of {names}",
                {"names": ", ".join(sorted(ACT2FN))},
            )
        return value.strip().lower()

    @field_validator("scaling", mode="before")
    @classmethod
    def _scaling(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "learned":
                return text
            try:
                value = float(text)
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise PydanticCustomError("scaling", "must be a positive number or 'learned'")
        return float(value)

    @field_validator("init", mode="before")
    @classmethod
    def _init_alias(cls, value: Any) -> Any:
        return "identity" if value == "mam_adapter" else value

    @field_validator("target_modules")
    @classmethod
    def _targets_not_empty(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list) and not value:
            raise PydanticCustomError("empty_targets", "must name at least one target, or be left out")
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("empty_targets", "the regex must not be empty")
        return value

    @field_validator("placement", mode="before")
    @classmethod
    def _placement_from_text(cls, value: Any) -> Any:
        # a command-line option gives one comma-separated string: placement=attn.o:post,mlp.down:post
        return [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("placement")
    @classmethod
    def _placement_entries(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise PydanticCustomError("empty_placement", "must name at least one '<target>:<kind>', or be left out")
        for entry in value:
            target, sep, kind = entry.rpartition(":")
            if not sep or not target.strip():
                raise PydanticCustomError(
                    "placement_entry",
                    "entry {entry} must look like '<target>:<kind>', e.g. 'attn.o:post' or 'up_proj:pre'",
                    {"entry": repr(entry)},
                )
            if kind.strip() not in ("pre", "post"):
                hint = "; a parallel adapter is the adapter type 'parallel'" if kind.strip() == "parallel" else ""
                raise PydanticCustomError(
                    "placement_kind",
                    "entry {entry}: the kind must be 'pre' or 'post'{hint}",
                    {"entry": repr(entry), "hint": hint},
                )
        if info.data.get("target_modules") is not None:
            raise PydanticCustomError(
                "placement_conflict",
                "give either placement (explicit kinds) or target_modules (kinds derived from roles), not both",
            )
        return [f"{t.strip()}:{k.strip()}" for t, _, k in (e.rpartition(":") for e in value)]

    @field_validator("variant")
    @classmethod
    def _variant_used(cls, value: str, info: ValidationInfo) -> str:
        # runs only when variant is given: it must then decide the placement
        if info.data.get("target_modules") is not None or info.data.get("placement") is not None:
            raise PydanticCustomError(
                "variant_unused",
                "only chooses the default placement and would be ignored next to target_modules or placement; "
                "leave one of them out",
            )
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if not self.uses_variant:  # keep a dumped config valid: variant plays no part here
            data.pop("variant", None)
        return data

    # ---- derived ----------------------------------------------------------------------------------------
    @property
    def uses_variant(self) -> bool:
        """Whether the placement comes from ``variant`` (neither target_modules nor placement is given)."""
        return self.placement is None and self.target_modules is None
