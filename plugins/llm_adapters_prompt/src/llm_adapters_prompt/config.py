"""Configs of the three prompt-based adapter types: validated, every field described.

Errors name the adapter, the field and the value (the core formats pydantic's errors as
``adapter 'prefix': num_virtual_tokens: input should be greater than or equal to 1, got 0``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from llm_adapters import AdapterConfig

#: the paper's best prefix length (LLM-Adapters, section 4); the reference's finetune.py defaulted to 30
DEFAULT_VIRTUAL_TOKENS = 10
MAX_VIRTUAL_TOKENS = 4096


def _virtual_tokens_field(what: str) -> object:
    return Field(
        DEFAULT_VIRTUAL_TOKENS,
        ge=1,
        le=MAX_VIRTUAL_TOKENS,
        description=f"Number of virtual tokens {what} (default 10, the paper's best for prefix tuning).",
    )


class _PromptConfigBase(AdapterConfig):
    """Shared by the three types: they are model-level and take no ``target_modules``."""

    @field_validator("target_modules")
    @classmethod
    def _no_targets(cls, value: object) -> object:
        if value is not None:
            raise PydanticCustomError(
                "no_targets",
                "prompt-based adapters act on the whole model and take no target_modules",
            )
        return value


class _TextInitConfig(_PromptConfigBase):
    """Fields of the types whose virtual tokens can start from a real text (prefix and prompt tuning)."""

    num_virtual_tokens: int = _virtual_tokens_field("")  # type: ignore[assignment]
    init: Literal["random", "text"] = Field(
        "random",
        description=(
            "Initialisation of the virtual tokens: 'random' (standard normal, as the reference) or 'text' (from "
            "init_text's tokens, repeated or cut to num_virtual_tokens)."
        ),
    )
    init_text: str | None = Field(
        None, min_length=1, description="Text whose tokens initialise the virtual tokens (init='text')."
    )
    init_token_ids: list[int] | None = Field(
        None,
        min_length=1,
        validate_default=True,
        description=(
            "Token ids that initialise the virtual tokens (init='text'). Filled in from init_text when the "
            "adapter is created, so that loading a saved adapter needs no tokenizer."
        ),
    )
    tokenizer_name_or_path: str | None = Field(
        None,
        description=(
            "Tokenizer that turns init_text into token ids: a local directory, a hub id or an embedded model name "
            "(default: the model's own name_or_path)."
        ),
    )

    @field_validator("init_text")
    @classmethod
    def _text_needs_text_init(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("init") != "text":
            raise PydanticCustomError("text_init_only", "applies only with init='text'")
        return value

    @field_validator("init_token_ids")
    @classmethod
    def _token_ids(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if value is not None and any(i < 0 for i in value):
            raise PydanticCustomError("negative_id", "token ids must be >= 0")
        if value is not None and info.data.get("init") != "text":
            raise PydanticCustomError("text_init_only", "applies only with init='text'")
        if value is None and info.data.get("init") == "text" and info.data.get("init_text") is None:
            raise PydanticCustomError("text_init", "init='text' needs init_text or init_token_ids")
        return value


class PrefixConfig(_TextInitConfig):
    """Prefix tuning (Li & Liang, 2021): learned keys and values prepended in every attention layer.

    ``init='text'`` starts the prefix from the keys and values the model itself computes for a real text, so
    the adapted model starts out as the base model reading that text (Li & Liang, section 7.2, found such
    initialisations better than random ones).
    """

    type: Literal["prefix"] = Field("prefix", description="The adapter type: always 'prefix'.")
    num_virtual_tokens: int = _virtual_tokens_field(
        "whose keys and values every attention layer sees; the reference's finetune.py used 30"
    )  # type: ignore[assignment]
    prefix_projection: bool = Field(
        False,
        description=(
            "Reparameterise the prefix through an MLP (embedding -> Linear -> tanh -> Linear), as Li & Liang "
            "do for stability; the MLP is trained and saved with the prefix."
        ),
    )
    encoder_hidden_size: int | None = Field(
        None,
        ge=1,
        description="Hidden width of the reparameterisation MLP (only with prefix_projection; default: the "
        "model's hidden size).",
    )
    positions: Literal["from_zero", "after_prefix"] = Field(
        "from_zero",
        description=(
            "Positions of the real tokens: 'from_zero' (0 .. n-1, as without the prefix; absolute-position models "
            "keep their whole context window) or 'after_prefix' (nv .. nv+n-1, counting the prefix: HF PEFT's "
            "convention, used for adapters imported from PEFT). BLOOM (ALiBi) behaves the same under both."
        ),
    )

    @field_validator("prefix_projection")
    @classmethod
    def _projection_random_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("init") == "text":
            raise PydanticCustomError(
                "projection_text_init", "cannot be combined with init='text' (the MLP cannot be set to given keys)"
            )
        return value

    @field_validator("encoder_hidden_size")
    @classmethod
    def _projection_width(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and not info.data.get("prefix_projection"):
            raise PydanticCustomError("projection_only", "applies only with prefix_projection=true")
        return value


class PromptConfig(_TextInitConfig):
    """Prompt tuning (Lester et al., 2021): learned input embeddings prepended to the input.

    ``init='text'`` copies the word embeddings of a text's tokens (Lester et al., section 3.2).
    """

    type: Literal["prompt"] = Field("prompt", description="The adapter type: always 'prompt'.")
    num_virtual_tokens: int = _virtual_tokens_field("prepended to the input embeddings")  # type: ignore[assignment]


class PTuningConfig(_PromptConfigBase):
    """P-tuning (Liu et al., 2021): virtual tokens produced by a trained prompt encoder (MLP or LSTM)."""

    type: Literal["ptuning"] = Field("ptuning", description="The adapter type: always 'ptuning'.")
    num_virtual_tokens: int = _virtual_tokens_field("prepended to the input embeddings")  # type: ignore[assignment]
    encoder: Literal["mlp", "lstm"] = Field(
        "mlp",
        description=(
            "Prompt encoder: 'mlp' (Linear -> ReLU -> Linear -> ReLU -> Linear) or 'lstm' (a bidirectional LSTM, "
            "then Linear -> ReLU -> Linear)."
        ),
    )
    encoder_hidden_size: int | None = Field(
        None, ge=1, description="Hidden width of the prompt encoder (default: the model's hidden size)."
    )
    encoder_num_layers: int = Field(2, ge=1, le=16, description="Number of LSTM layers (encoder='lstm' only).")
    encoder_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout between LSTM layers (encoder='lstm' only, training only)."
    )

    @field_validator("encoder_num_layers", "encoder_dropout")
    @classmethod
    def _lstm_only(cls, value: float, info: ValidationInfo) -> float:
        # a saved config holds every field, so only values other than the defaults are mistakes
        default = cls.model_fields[info.field_name].default  # type: ignore[index]
        if info.data.get("encoder") != "lstm" and value != default:
            raise PydanticCustomError("lstm_only", "applies only with encoder='lstm'")
        return value
