"""The configuration of a training run (``llm-adapters train``): one validated pydantic model.

A run is described by a YAML or JSON file holding these fields, by command-line flags, or both; a flag wins
over the file. ``adapter_options`` are the adapter's own config fields (``-o key=value`` on the command line),
validated by the adapter plugin's config class when the adapter is attached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llm_adapters.config import coerce_options, format_validation_error, read_config_file
from llm_adapters.errors import ConfigError
from llm_adapters_templates import DEFAULT_TEMPLATE

Scheduler = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"
]


class TrainConfig(BaseModel):
    """Everything a training run needs. Defaults follow the reference's recommended recipes where they exist
    (batch 16, micro-batch 4, lr 3e-4, cutoff 256, 3 epochs), except that the prompt is masked from the loss
    by default (``train_on_inputs: false``; the reference trained on it)."""

    model_config = ConfigDict(extra="forbid")

    # what to train
    model: str | None = Field(
        None,
        description="Base model: an HF hub id, a local model directory, or a name or file an installed model "
        "source handles (a .gguf file, the embedded 'smollm2-135m'); default: the installed default model.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Precision of the base model and of the forward pass: auto = bfloat16 on a GPU that supports "
        "it, float16 (with loss scaling) on one that does not, float32 on the CPU. Adapter weights stay float32.",
    )
    quantize: Literal["8bit", "4bit"] | None = Field(
        None,
        description="Load the base model quantized by bitsandbytes: 8bit (LLM.int8()) or 4bit (NF4 with double "
        "quantization: QLoRA); the adapter trains in float32 on top. Needs the [quant] extra.",
    )
    device_map: Literal["auto", "balanced", "sequential"] | None = Field(
        None,
        description="Spread the base model's layers over the GPUs of this machine (one process; for models too "
        "large for one GPU): auto, balanced or sequential.",
    )
    adapter: str = Field("lora", min_length=1, description="Adapter type (see `llm-adapters plugins`).")
    adapter_options: dict[str, Any] = Field(
        default_factory=dict, description="The adapter's config fields, e.g. {r: 32, alpha: 64} (flag: -o key=value)."
    )
    data: str = Field(
        ..., min_length=1, description="Training data: .json / .jsonl / .parquet / .arrow file, directory, or hub name."
    )
    output: str = Field(..., min_length=1, description="Output directory: adapter, checkpoints, metrics, plot.")

    # data and prompts
    template: str = Field(DEFAULT_TEMPLATE, description="Prompt template (alpaca, alpaca-reference, chat, ...).")
    cutoff_len: int = Field(256, ge=8, le=1_000_000, description="Maximum tokens per example (longer are cut).")
    train_on_inputs: bool = Field(
        False, description="Put the loss on the prompt too (the reference's default) instead of only the response."
    )
    add_eos: bool = Field(True, description="Append EOS to examples shorter than cutoff_len (as the reference).")
    val_set_size: float = Field(
        0, ge=0, description="Validation split: a number of records (>= 1), a fraction (< 1), or 0 for none."
    )
    limit: int | None = Field(None, ge=1, description="Use only the first N records of the data (for quick runs).")

    # schedule
    batch_size: int = Field(16, ge=1, description="Global batch size: examples per optimizer step, all processes.")
    micro_batch_size: int = Field(4, ge=1, description="Examples per forward pass on one process.")
    num_epochs: float = Field(3.0, gt=0, description="Passes over the training data (ignored with max_steps).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    learning_rate: float = Field(3e-4, gt=0, lt=10, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(100, ge=0, description="Linear warm-up steps (the reference's 100).")
    lr_scheduler: Scheduler = Field("linear", description="Learning-rate schedule after warm-up.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0 disables clipping).")
    gradient_checkpointing: bool | None = Field(
        None,
        description="Recompute activations in backward to save memory (default: on with quantize, off otherwise).",
    )
    seed: int = Field(42, ge=0, description="Seed for adapter initialisation, data order, split and dropout.")

    # evaluation, logging, checkpoints
    eval_steps: int = Field(200, ge=1, description="Evaluate on the validation split every N steps.")
    save_steps: int = Field(200, ge=1, description="Write a checkpoint every N steps.")
    save_total_limit: int | None = Field(3, ge=1, description="Keep at most N checkpoints (the oldest are removed).")
    logging_steps: int = Field(10, ge=1, description="Log the training loss every N steps.")
    load_best_model_at_end: bool = Field(
        False, description="With a validation split, end with the checkpoint of lowest validation loss."
    )
    report_to: Literal["auto", "none", "tensorboard"] = Field(
        "auto", description="Logging integrations: auto = TensorBoard when it is installed."
    )
    resume: bool | str = Field(
        False, description="Continue from the latest checkpoint in the output directory (true) or from a given one."
    )
    overwrite: bool = Field(False, description="Start afresh even if the output directory holds checkpoints.")
    progress: bool = Field(True, description="Show a progress bar.")

    @model_validator(mode="after")
    def _batch_sizes(self) -> TrainConfig:
        if self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size ({self.micro_batch_size})"
            )
        if self.val_set_size >= 1 and self.val_set_size != int(self.val_set_size):
            raise ValueError(f"val_set_size >= 1 is a number of records and must be whole, got {self.val_set_size}")
        return self


def build_config(
    file: str | Path | None = None, flags: dict[str, Any] | None = None, options: dict[str, Any] | None = None
) -> TrainConfig:
    """Merge a config file, flags (``None`` values mean "not given") and adapter options; flags win, and
    ``options`` update the file's ``adapter_options`` key by key."""
    data: dict[str, Any] = read_config_file(file) if file is not None else {}
    where = f"{file}" if file is not None else "train config"
    for key, value in (flags or {}).items():
        if value is not None:
            data[key] = value
    if options:
        adapter = data.get("adapter") or TrainConfig.model_fields["adapter"].default
        merged = dict(data.get("adapter_options") or {})
        merged.update(coerce_options(adapter, options))  # "-o target_modules=attn.q,attn.v" -> a list
        data["adapter_options"] = merged
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None
