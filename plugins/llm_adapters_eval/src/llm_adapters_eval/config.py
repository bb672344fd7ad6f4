"""The configuration of an evaluation run (``llm-adapters evaluate``): one validated pydantic model, and the
two protocols it can follow.

``default``: greedy decoding, stop at EOS, the training template, ``robust`` scoring.
``reference``: the LLM-Adapters scripts' protocol for comparability with the paper: 4-beam search, no EOS
stopping (their generation config carried no EOS id), 256 new tokens for math and 32 for commonsense, the
reference's evaluation template and ``reference`` scoring. Any field given explicitly wins over the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_adapters.config import format_validation_error, read_config_file
from llm_adapters.errors import ConfigError
from llm_adapters.task import Task
from llm_adapters_templates import DEFAULT_TEMPLATE

REFERENCE_TEMPLATE = "alpaca-reference-eval"
REFERENCE_BEAMS = 4


class EvalConfig(BaseModel):
    """Everything an evaluation run needs; ``None`` means "as the protocol says"."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None,
        description="Base model: an HF hub id, a local model directory, or a name or file an installed model "
        "source handles (a .gguf file, the embedded 'smollm2-135m'); default: the installed default model.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype: auto = float32 on CPU, bfloat16 (or float16) on a GPU."
    )
    quantize: Literal["8bit", "4bit"] | None = Field(
        None, description="Load the base model quantized by bitsandbytes (8bit, or 4bit NF4); needs the [quant] extra."
    )
    device_map: Literal["auto", "balanced", "sequential"] | None = Field(
        None, description="Spread the base model's layers over this machine's GPUs (auto, balanced, sequential)."
    )
    adapter_paths: list[str] = Field(
        default_factory=list, description="Adapter directories to evaluate, each in its own run, side by side."
    )
    include_base: bool | None = Field(
        None, description="Also evaluate the base model without adapters (default: only when no adapter is given)."
    )
    tasks: list[str] = Field(
        ..., min_length=1, description="Task names or suites (math, commonsense), case-insensitive; 'a,b' also works."
    )
    data_dir: str | None = Field(
        None, description="Folder holding dataset/<Name>/test.json (default: $LLM_ADAPTERS_DATA)."
    )
    output: str = Field(..., min_length=1, description="Output directory for summary.json, JSONL, table and chart.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N examples of each task.")
    batch_size: int = Field(16, ge=1, le=4096, description="Prompts per generation batch (1 = one at a time).")
    protocol: Literal["default", "reference"] = Field(
        "default", description="default: greedy, EOS stop, robust scoring; reference: the paper's scripts."
    )
    scoring: Literal["robust", "reference"] | None = Field(
        None, description="Answer extraction rules (default: robust, or reference under the reference protocol)."
    )
    method: Literal["generate", "loglik"] = Field(
        "generate",
        description="generate: generate and extract the answer; loglik: pick the most likely option "
        "(multiple-choice tasks only; other tasks are still generated).",
    )
    loglik_target: Literal["label", "text"] = Field(
        "label",
        description="loglik: score each option's answer as trained ('the correct answer is answer2') or its text.",
    )
    loglik_normalize: Literal["auto", "sum", "mean"] = Field(
        "auto", description="loglik: total log-probability, or per token (auto: sum for labels, mean for texts)."
    )
    num_beams: int | None = Field(None, ge=1, le=64, description="Beam width (default 1 = greedy; reference: 4).")
    max_new_tokens: int | None = Field(
        None, ge=1, le=32768, description="Generation budget (default: the task's, 256 for math, 32 for commonsense)."
    )
    stop_at_eos: bool | None = Field(
        None, description="Stop generating at the end-of-sequence token (default: yes; reference protocol: no)."
    )
    template: str | None = Field(
        None,
        description=f"Prompt template (default: '{DEFAULT_TEMPLATE}', the training default; reference protocol: "
        f"'{REFERENCE_TEMPLATE}').",
    )
    progress: bool = Field(True, description="Show progress bars on stderr.")

    @field_validator("tasks", "adapter_paths", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)):
            return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
        return value

    # ---- what the protocol implies --------------------------------------------------------------
    @property
    def reference_protocol(self) -> bool:
        return self.protocol == "reference"

    @property
    def scoring_mode(self) -> str:
        return self.scoring or ("reference" if self.reference_protocol else "robust")

    @property
    def template_name(self) -> str:
        return self.template or (REFERENCE_TEMPLATE if self.reference_protocol else DEFAULT_TEMPLATE)

    @property
    def with_base(self) -> bool:
        return self.include_base if self.include_base is not None else not self.adapter_paths

    def generation_for(self, task: Task) -> TaskGeneration:
        """The generation settings of ``task`` under this config."""
        ref = self.reference_protocol
        return TaskGeneration(
            max_new_tokens=self.max_new_tokens or task.max_new_tokens,
            num_beams=self.num_beams or (REFERENCE_BEAMS if ref else 1),
            stop_at_eos=self.stop_at_eos if self.stop_at_eos is not None else not ref,
            skip_special_tokens=task.reference_skip_special_tokens if ref else False,
        )

    def normalize_for(self) -> str:
        if self.loglik_normalize != "auto":
            return self.loglik_normalize
        return "sum" if self.loglik_target == "label" else "mean"


@dataclass(frozen=True)
class TaskGeneration:
    max_new_tokens: int
    num_beams: int
    stop_at_eos: bool
    skip_special_tokens: bool


def build_eval_config(file: str | None = None, flags: dict[str, object] | None = None) -> EvalConfig:
    """A config from a YAML/JSON file and flags (``None`` values mean "not given"); flags win."""

    data = read_config_file(file) if file is not None else {}
    for key, value in (flags or {}).items():
        if value is not None and value != ():
            data[key] = list(value) if isinstance(value, tuple) else value
    try:
        return EvalConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(file) if file else "evaluate config")) from None
