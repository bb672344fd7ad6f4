"""A grid: the methods to compare, the data they train on, the settings they share and the tasks they are
evaluated on; read from a YAML or JSON file, or from a preset shipped with this package.

The file is checked here for its shape only (names, required fields, unknown keys); what its sections mean
(adapter options, training and evaluation settings, task names, data files) is checked against the installed
plugins by :mod:`llm_adapters_reproduce.plan`, before anything runs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llm_adapters.config import format_validation_error, read_config_file
from llm_adapters.errors import ConfigError

#: a method's name is also the name of its folder under --output
NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"
#: the zero-shot base model's row; no method may take this name
ZERO_SHOT = "zero-shot"
#: folder names the run itself uses under --output
RESERVED_NAMES = frozenset({ZERO_SHOT, "data"})


class MethodSpec(BaseModel):
    """One row of the table: an adapter, trained with the grid's settings (and this method's overrides)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ...,
        pattern=NAME_PATTERN,
        max_length=64,
        description="The row's name, also its folder under --output: a lowercase letter, then letters, digits, - or _.",
    )
    adapter: dict[str, Any] = Field(
        ...,
        description="The adapter config: {type: lora, r: 32, ...}, validated by the adapter type's own config class.",
    )
    training: dict[str, Any] = Field(
        default_factory=dict,
        description="Training settings for this method only (the `train` options, e.g. learning_rate), over the "
        "grid's.",
    )
    paper: str | None = Field(
        None,
        description="The row of the paper's table this method stands for (LoRA, Series, Parallel, Prefix); "
        "default: the one of its adapter type, where the paper has one.",
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved for the run's own folders ({', '.join(sorted(RESERVED_NAMES))})")
        return value

    @field_validator("adapter")
    @classmethod
    def _has_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        kind = value.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise ValueError("needs a 'type' naming an installed adapter type, e.g. {type: lora, r: 32}")
        return value


class Grid(BaseModel):
    """Methods x tasks, with the training and evaluation settings they share."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=NAME_PATTERN, max_length=64, description="The grid's name (shown in the results).")
    description: str = Field("", description="What the grid reproduces, in a sentence or two.")
    model: str | None = Field(
        None,
        description="Base model: an HF hub id, a local model directory, or a name an installed model source "
        "handles (the embedded 'smollm2-135m'); default: the installed default model.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype: auto = float32 on CPU, bfloat16 (or float16) on a GPU."
    )
    data_dir: str | None = Field(
        None,
        description="Folder in the LLM-Adapters layout (dataset/<Name>/test.json, ft-training_set/...); default: "
        "--data-dir, else $LLM_ADAPTERS_DATA, else ../shared/data/llm-adapters where it exists.",
    )
    train_data: str = Field(
        ...,
        min_length=1,
        description="Training data file, relative to the data folder (ft-training_set/math_10k.json) or absolute.",
    )
    decontaminate: bool = Field(
        True,
        description="Leave out training records whose instruction repeats an evaluated test problem (compared "
        "after lower-casing and collapsing white space); the number left out is recorded.",
    )
    tasks: list[str] = Field(
        ..., min_length=1, description="Tasks or suites (math, commonsense), as `evaluate --task` takes them."
    )
    zero_shot: bool = Field(True, description="Also evaluate the base model without any adapter (the first row).")
    training: dict[str, Any] = Field(
        default_factory=dict,
        description="Training settings every method shares: the `train` options (batch_size, learning_rate, "
        "max_steps, cutoff_len, template, ...).",
    )
    evaluation: dict[str, Any] = Field(
        default_factory=dict,
        description="Evaluation settings: the `evaluate` options (limit, batch_size, max_new_tokens, protocol, "
        "scoring, template, method, ...).",
    )
    methods: list[MethodSpec] = Field(..., min_length=1, description="The adapter methods, one table row each.")

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)):
            return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Grid:
        seen: set[str] = set()
        for method in self.methods:
            if method.name in seen:
                raise ValueError(f"two methods are called {method.name!r}; give each method its own name")
            seen.add(method.name)
        return self


def parse_grid(data: dict[str, Any], where: str) -> Grid:
    """A :class:`Grid` from a mapping; problems are one :class:`ConfigError` prefixed by ``where``."""
    try:
        return Grid.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


def load_grid(path: str | Path) -> Grid:
    """The grid in a YAML or JSON file."""
    return parse_grid(read_config_file(path), str(path))


# ---- presets ----------------------------------------------------------------------------------------
def _presets_dir() -> Any:
    return resources.files("llm_adapters_reproduce") / "presets"


def preset_names() -> list[str]:
    """The presets shipped with this package."""
    return sorted(p.name[: -len(".yaml")] for p in _presets_dir().iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML text of preset ``name``."""
    names = preset_names()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; the presets are: {', '.join(names)} (or give --grid FILE)")
    return (_presets_dir() / f"{name}.yaml").read_text(encoding="utf-8")


def load_preset(name: str) -> Grid:
    """The grid of preset ``name``."""
    import yaml

    data = yaml.safe_load(preset_text(name))
    return parse_grid(data, f"preset {name!r}")
