"""The ``lora`` adapter config: validated, every field described."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from llm_adapters import AdapterConfig

#: Targets, in roles, used when ``target_modules`` is not given.
PRESETS: dict[str, tuple[str, ...]] = {
    # the reference system's finetune.py default for LLaMA-style models
    "reference": ("attn.q", "attn.v"),
    # the placement the LLM-Adapters paper (Hu et al., 2023, section 4) found best for LoRA
    "paper-best": ("attn.q", "attn.k", "attn.v", "mlp.up", "mlp.down"),
}


class LoRAConfig(AdapterConfig):
    """Config of a LoRA adapter (and its rsLoRA / DoRA variants).

    Defaults are those the reference system's ``finetune.py`` passes: ``r=8``, ``alpha=16``,
    ``dropout=0.05``, on the query and value projections.
    """

    type: Literal["lora"] = Field("lora", description="The adapter type: always 'lora'.")
    r: int = Field(8, ge=1, description="Rank of the low-rank update B A (A: r x d_in, B: d_out x r).")
    alpha: float = Field(
        16.0,
        gt=0,
        description="Scale numerator: the update is multiplied by alpha / r (alpha / sqrt(r) with use_rslora).",
    )
    dropout: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="Dropout probability on the input of the low-rank branch (training only; 0 skips it).",
    )
    use_rslora: bool = Field(
        False,
        description="Rank-stabilised LoRA (Kalajdzievski, 2023): scale by alpha / sqrt(r) instead of alpha / r.",
    )
    use_dora: bool = Field(
        False,
        description=(
            "Weight-decomposed LoRA (Liu et al., 2024): W' = m * (W + s B A) / ||W + s B A||_c, with a learned "
            "magnitude m per output feature initialised to the row norms of W."
        ),
    )
    preset: Literal["reference", "paper-best"] = Field(
        "reference",
        description=(
            "Targets used when target_modules is not given: 'reference' = attn.q, attn.v (the reference "
            "system's default); 'paper-best' = attn.q, attn.k, attn.v, mlp.up, mlp.down (the paper's best)."
        ),
    )

    @field_validator("target_modules")
    @classmethod
    def _targets_not_empty(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list) and not value:
            raise PydanticCustomError(
                "empty_targets", "must name at least one target, or be left out to use the preset"
            )
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("empty_targets", "the regex must not be empty")
        return value

    @property
    def scale(self) -> float:
        """The factor s applied to B A: alpha / r, or alpha / sqrt(r) with use_rslora."""
        return self.alpha / (self.r**0.5 if self.use_rslora else self.r)

    def targets(self) -> list[str] | str:
        """``target_modules`` when given, else the preset's roles."""
        return self.target_modules if self.target_modules is not None else list(PRESETS[self.preset])
