"""The ``parallel`` adapter config: validated, every field described."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_serializer
from pydantic_core import PydanticCustomError

from llm_adapters import AdapterConfig

#: Targets, in roles, used when ``target_modules`` is not given.
PRESETS: dict[str, tuple[str, ...]] = {
    # the reference system's default for LLaMA-style models (q_proj, v_proj, k_proj)
    "reference": ("attn.q", "attn.k", "attn.v"),
    # alongside the MLP: the placement the LLM-Adapters paper (Hu et al., 2023) found best for parallel adapters
    "paper-best": ("mlp.up", "mlp.down"),
}


class ParallelConfig(AdapterConfig):
    """Config of a parallel (bottleneck) adapter.

    Defaults are the reference system's (``BottleneckConfig`` with ``use_parallel_adapter``): bottleneck 256,
    tanh, no dropout, scale 1, BERT-style initialisation, on the attention q, k and v projections. The
    paper's reported "Parallel" results use ``preset="paper-best"`` (alongside the MLP).
    """

    type: Literal["parallel"] = Field("parallel", description="The adapter type: always 'parallel'.")
    bottleneck_size: int = Field(256, ge=1, description="Width m of the bottleneck: Down is d_in x m, Up is m x d_out.")
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
            "trainable scalar per adapted module, starting at 1 (the 'scaled parallel' adapter)."
        ),
    )
    init: Literal["bert", "identity"] = Field(
        "bert",
        description=(
            "Initialisation: 'bert' = Down and Up ~ N(0, 0.02) (the reference's default; the adapter starts as a "
            "small perturbation); 'identity' = Down Kaiming-uniform (a=sqrt(5)), Up = 0, so the adapted model "
            "starts exactly as the base model (the reference's 'mam_adapter', accepted as an alias)."
        ),
    )
    preset: Literal["reference", "paper-best"] = Field(
        "reference",
        description=(
            "Targets used when target_modules is not given: 'reference' = attn.q, attn.k, attn.v (what the "
            "reference system does when no option is given, hence the default); 'paper-best' = mlp.up, mlp.down "
            "(alongside the MLP, the placement the paper found best and reports as 'Parallel')."
        ),
    )

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

    @field_validator("preset")
    @classmethod
    def _preset_used(cls, value: str, info: ValidationInfo) -> str:
        # runs only when preset is given: it must then decide the targets
        if info.data.get("target_modules") is not None:
            raise PydanticCustomError(
                "preset_unused",
                "only chooses the default targets and would be ignored next to target_modules; leave one of them out",
            )
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if self.target_modules is not None:  # keep a dumped config valid: preset plays no part here
            data.pop("preset", None)
        return data

    def targets(self) -> list[str] | str:
        """``target_modules`` when given, else the preset's roles."""
        return self.target_modules if self.target_modules is not None else list(PRESETS[self.preset])
