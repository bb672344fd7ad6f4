"""The ``fusion`` adapter config: the adapters to fuse, the softmax temperature, where the residual goes.

Validating a config reads every fused adapter's config file (through the core's
``read_adapter_config``): the directories must exist, hold adapters of a type the fusion supports
(``series`` or ``parallel``), and all sit on the same sites with the same kinds. The directories are stored
as absolute paths, so that a saved fusion finds them again from anywhere.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from llm_adapters import AdapterConfig


class FusionConfig(AdapterConfig):
    """Config of an AdapterFusion layer set (Pfeiffer et al., 2021)."""

    type: Literal["fusion"] = Field("fusion", description="The adapter type: always 'fusion'.")
    adapters: list[str] = Field(
        ...,
        min_length=2,
        description=(
            "Two or more directories of trained adapters to fuse (each with its config and "
            "adapter_model.safetensors), all of type 'series' or all of type 'parallel', on the same sites with "
            "the same kinds. Stored as absolute paths; the fused adapters stay frozen and are re-read from these "
            "directories whenever the fusion is attached or loaded. A comma-separated string is accepted."
        ),
    )
    temperature: float = Field(
        1.0,
        gt=0,
        description="Softmax temperature T of the attention over the adapters: a = softmax(s / T), T > 0.",
    )
    residual_before: bool = Field(
        False,
        description=(
            "false (the paper's default): keys and values are the adapters' own contributions z_i = o_i - h and "
            "the fusion adds h back after the attention, out = h + sum_i a_i (z_i W_V); true: keys and values are "
            "the adapters' whole outputs o_i (residual included), out = sum_i a_i (o_i W_V)."
        ),
    )

    @field_validator("adapters", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # a command-line option gives one comma-separated string: adapters=out/a,out/b
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("adapters")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        out = [str(Path(v).expanduser().resolve()) for v in value]
        if len(set(out)) != len(out):
            raise PydanticCustomError("duplicate_adapter", "names the same adapter directory twice")
        return out

    @field_validator("temperature")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise PydanticCustomError("temperature", "must be a finite positive number")
        return value

    @field_validator("target_modules")
    @classmethod
    def _no_targets(cls, value: Any) -> Any:
        if value is not None:
            raise PydanticCustomError(
                "fusion_targets",
                "a fusion sits exactly where its adapters sit (read from their adapter configs); leave "
                "target_modules out",
            )
        return value

    @model_validator(mode="after")
    def _sources_fit(self) -> FusionConfig:
        # imported here: reading adapter directories needs the core's file module (torch); importing this
        # config (say, to register the adapter type for `llm-adapters plugins`) does not
        from llm_adapters.errors import LLMAdaptersError

        from .sources import common_targets

        try:
            common_targets(self.adapters)
        except LLMAdaptersError as exc:
            raise ValueError(str(exc)) from None
        return self
