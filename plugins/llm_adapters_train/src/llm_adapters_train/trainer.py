"""The HF ``Trainer`` with adapter-only checkpoints, and the ``TrainingArguments`` a run config maps to.

Checkpoints hold the adapter only (``adapter_model.safetensors`` + its config through
:func:`llm_adapters.save_adapter`) next to the Trainer's own state files (``trainer_state.json``,
``optimizer.pt``, ``scheduler.pt``, ``rng_state*.pth``, written and read by the Trainer itself with
``weights_only=True``); the Trainer's pickled ``training_args.bin`` is replaced by ``training_args.json``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llm_adapters.fileio import atomic_write_text
from llm_adapters.files import load_adapter_weights, save_adapter

from .checkpoints import mark_complete, save_gathered_adapter
from .errors import TrainingError
from .precision import mixed_precision
from .run_config import TrainConfig


def trainer_class() -> type:
    from transformers import Trainer

    class AdapterTrainer(Trainer):
        """A Trainer whose checkpoints hold the adapter only, in safetensors."""

        adapter_name = "default"
        #: file key -> state-dict key, and the adapter config (file name, text), taken before any sharding
        adapter_keys: dict[str, str] | None = None
        adapter_config_file: tuple[str, str] | None = None

        def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
            super()._save_checkpoint(model, trial)
            if self.args.should_save:  # everything else is on disk: the marker makes the checkpoint count
                folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
                if folder.is_dir():
                    mark_complete(folder, self.state.global_step)

        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            output_dir = output_dir or self.args.output_dir
            if not self.args.should_save:
                return
            os.makedirs(output_dir, exist_ok=True)
            if state_dict is not None and self.adapter_keys and self.adapter_config_file:
                # FSDP (full state dict) and DeepSpeed hand over the gathered weights: take the adapter's
                save_gathered_adapter(state_dict, self.adapter_keys, self.adapter_config_file, Path(output_dir))
            else:
                save_adapter(self.model, output_dir, name=self.adapter_name)
            atomic_write_text(Path(output_dir, "training_args.json"), self.args.to_json_string())

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
            load_adapter_weights(model if model is not None else self.model, resume_from_checkpoint, self.adapter_name)

        def _load_best_model(self) -> None:
            best = self.state.best_model_checkpoint
            if best:
                load_adapter_weights(self.model, best, self.adapter_name)

    return AdapterTrainer


def _report_to(choice: str) -> list[str]:
    if choice == "none":
        return []
    if choice == "tensorboard":
        return ["tensorboard"]
    has_tb = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    return ["tensorboard"] if has_tb else []


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def gradient_accumulation(config: TrainConfig, n_processes: int) -> int:
    """``batch_size / (micro_batch_size * processes)``; it must divide exactly (the reference silently
    rounded down)."""
    per_step = config.micro_batch_size * n_processes
    if config.batch_size % per_step:
        raise TrainingError(
            f"batch_size {config.batch_size} is not a multiple of micro_batch_size {config.micro_batch_size} x "
            f"{n_processes} process(es) = {per_step}"
        )
    return config.batch_size // per_step


def training_arguments(
    config: TrainConfig, *, has_eval: bool, dtype: torch.dtype, gradient_checkpointing: bool | None = None
) -> Any:
    """The Trainer's arguments for ``config``: ``dtype`` is the precision the base computes in (bf16 / fp16
    switch the Trainer's mixed precision on, see :func:`.precision.mixed_precision`); ``gradient_checkpointing``
    as resolved for the run (None: the config's setting)."""
    from transformers import TrainingArguments

    n = world_size()
    checkpointing = bool(config.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing)
    kwargs: dict[str, Any] = dict(
        output_dir=config.output,
        per_device_train_batch_size=config.micro_batch_size,
        per_device_eval_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=gradient_accumulation(config, n),
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        lr_scheduler_type=config.lr_scheduler,
        max_grad_norm=config.max_grad_norm,
        optim="adamw_torch",
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps if has_eval else None,
        load_best_model_at_end=bool(config.load_best_model_at_end and has_eval),
        metric_for_best_model="eval_loss" if has_eval else None,
        greater_is_better=False if has_eval else None,
        activation_checkpointing=checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        **mixed_precision(dtype),
        seed=config.seed,
        data_seed=config.seed,
        report_to=_report_to(config.report_to),
        disable_tqdm=not config.progress,
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False if n > 1 else None,
    )
    fields = TrainingArguments.__dataclass_fields__
    if "activation_checkpointing" not in fields:  # transformers < 5.x names
        kwargs["gradient_checkpointing"] = kwargs.pop("activation_checkpointing")
        kwargs["gradient_checkpointing_kwargs"] = kwargs.pop("activation_checkpointing_kwargs")
    return TrainingArguments(**kwargs)
