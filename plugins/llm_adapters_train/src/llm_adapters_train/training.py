"""A fine-tuning run with the HF ``Trainer`` (accelerate underneath: one process, DDP under torchrun, FSDP or
DeepSpeed through an accelerate config).

What is ours: the adapter is attached with :func:`llm_adapters.attach`, checkpoints hold the adapter only
(:mod:`.trainer`), and resuming loads the adapter from the checkpoint's safetensors and lets the Trainer
restore its state, so the run continues at the same step. The output directory ends with the final adapter
(loadable with :func:`llm_adapters.load_adapter`), ``metrics.json``, ``loss.png`` and ``train_config.json``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llm_adapters.config import parse_config
from llm_adapters.engine import adapter_config, attach, list_adapters, trainable_parameters
from llm_adapters.fileio import OutputLock, atomic_write_text, check_output_dir, write_json
from llm_adapters.files import CONFIG_NAME, OWN_CONFIG_NAME, WEIGHTS_NAME, config_file, save_adapter
from llm_adapters.models import check_device_map, ensure_pad_token, load_model
from llm_adapters.quantize import is_quantized, require_bitsandbytes
from llm_adapters.template import get_template

from .checkpoints import (
    COMPLETE,
    TRAINER_STATE,
    adapter_state_dict_keys,
    checkpoint_problem,
    checkpoints,
    incomplete_checkpoints,
    latest_checkpoint,
    remove_orphan_temporaries,
)
from .curves import plot_losses
from .data import RightPaddingCollator, load_records, split_records, tokenize_dataset
from .errors import TrainingError, TrainingInterrupted
from .kbit import prepare_kbit_training
from .precision import model_precision, training_device, training_dtype
from .run_config import TrainConfig
from .trainer import trainer_class, training_arguments

METRICS_NAME = "metrics.json"
PLOT_NAME = "loss.png"
RUN_CONFIG_NAME = "train_config.json"
#: free space asked of the output directory before training starts (a checkpoint of a large adapter, and more)
CHECKPOINT_SPACE = 64 * 2**20


@dataclass
class TrainResult:
    """What :func:`train` wrote and measured."""

    output_dir: Path
    metrics: dict[str, Any]
    plot: Path | None
    checkpoints: list[Path] = field(default_factory=list)
    resumed_from: Path | None = None


def _prepare_output(config: TrainConfig) -> Path | None:
    """Check the output directory before any long work and choose the checkpoint to resume from."""
    out = Path(config.output)
    check_output_dir(out, what="train", need_bytes=CHECKPOINT_SPACE, create=False)
    for orphan in remove_orphan_temporaries(out):
        print(f"removed {orphan}, a temporary file left by an interrupted write")
    if config.resume:
        if isinstance(config.resume, str):
            ckpt = Path(config.resume)
            problem = checkpoint_problem(ckpt)
            if problem:
                raise TrainingError(
                    f"cannot resume from {ckpt}: not a complete checkpoint ({problem}); a checkpoint needs "
                    f"{WEIGHTS_NAME}, {CONFIG_NAME} (or {OWN_CONFIG_NAME}), {TRAINER_STATE} and {COMPLETE}, "
                    "written last"
                )
            return ckpt
        for skipped, problem in incomplete_checkpoints(out):
            print(f"skipping {skipped}: incomplete ({problem}), probably interrupted while it was written")
        ckpt = latest_checkpoint(out)
        if ckpt is None:
            print(f"no checkpoint in {out} to resume from: starting from the beginning")
        return ckpt
    existing = [p for p in out.glob("checkpoint-*") if p.is_dir()] if out.is_dir() else []
    if existing and not config.overwrite:
        raise TrainingError(
            f"{out} already holds checkpoints ({', '.join(sorted(p.name for p in existing))}); pass --resume to "
            "continue that run, --overwrite to start afresh, or choose another output directory"
        )
    existing_config = config_file(out)
    if existing_config is not None and not config.overwrite:
        raise TrainingError(
            f"{out} already holds a trained adapter ({existing_config.name}); pass --overwrite to replace it, or "
            "choose another output directory"
        )
    if config.overwrite and int(os.environ.get("RANK", "0")) == 0:  # under torchrun rank 0 alone deletes
        for p in existing:
            shutil.rmtree(p, ignore_errors=True)
    return None


def _load_device(config: TrainConfig) -> Any:
    """Where ``train()`` loads the base: nowhere in particular with a device map (it places the layers); on
    the training device when quantizing (bitsandbytes quantizes where the weights are loaded); else on the
    CPU, from where the Trainer moves it (or DeepSpeed / FSDP shard it)."""
    if config.device_map is not None:
        return None
    return training_device() if config.quantize is not None else "cpu"


def _precision_text(precision: torch.dtype, quantized: str | None) -> str:
    name = str(precision).removeprefix("torch.")
    amp = {torch.bfloat16: " (autocast)", torch.float16: " (autocast, loss scaling)"}.get(precision, "")
    base = f"{quantized} base computing in {name}{amp}" if quantized else f"precision {name}{amp}"
    return f"{base}; adapter weights float32"


@contextlib.contextmanager
def _adapters_declared(model: nn.Module) -> Iterator[None]:
    """While the Trainer is built, tell transformers that trainable adapters sit on the model: it refuses a
    quantized model that carries none it knows of (PEFT's), and ours are attached by the kernel instead."""
    if not is_quantized(model) or model.__dict__.get("_hf_peft_config_loaded"):
        yield
        return
    model._hf_peft_config_loaded = True
    try:
        yield
    finally:
        del model._hf_peft_config_loaded


def train(
    config: TrainConfig,
    *,
    model: nn.Module | None = None,
    tokenizer: Any = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Run a fine-tuning described by ``config``; ``model`` / ``tokenizer`` replace loading ``config.model``
    (a model may already carry the adapter ``default``, e.g. to continue training it)."""
    if (model is None) != (tokenizer is None):
        raise TrainingError("pass both model and tokenizer, or neither")
    # everything that can fail fast does so before the model is loaded
    resume_from = _prepare_output(config)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    # one writer per output directory (under torchrun the processes of one run share it: rank 0 holds it)
    with OutputLock(out, "train") if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext():
        return _train(config, resume_from, model, tokenizer, callbacks)


def _train(
    config: TrainConfig, resume_from: Path | None, model: nn.Module | None, tokenizer: Any, callbacks: list[Any] | None
) -> TrainResult:
    from transformers import set_seed

    if config.quantize is not None:  # options that need something absent fail before any data is read
        require_bitsandbytes(config.quantize)
    if model is None:
        check_device_map(config.device_map)
    records = load_records(config.data, limit=config.limit)
    train_ds, val_ds = split_records(records, config.val_set_size, seed=config.seed)
    get_template(config.template)
    parse_config({"type": config.adapter, **config.adapter_options})  # adapter options, checked before loading
    if model is None:
        precision = training_dtype(config.dtype)  # for the device training runs on, not the one it loads on
        model, tokenizer = load_model(
            config.model,
            dtype=precision,
            device=_load_device(config),
            quantize=config.quantize,
            device_map=config.device_map,
        )
        model_name = getattr(model.config, "_name_or_path", None) or str(config.model)
    else:
        if config.quantize is not None and is_quantized(model) != config.quantize:
            raise TrainingError(
                f"quantize={config.quantize!r} applies when train() loads the model, but the model passed in is "
                f"{'quantized to ' + str(is_quantized(model)) if is_quantized(model) else 'not quantized'}; load "
                f"it with load_model(..., quantize={config.quantize!r}) or leave quantize out"
            )
        precision = model_precision(model)
        model_name = getattr(model.config, "_name_or_path", None) or config.model or "model"
    ensure_pad_token(tokenizer)
    quantized = is_quantized(model)
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else bool(quantized)

    names = [a.name for a in list_adapters(model)]
    if names and names != ["default"]:
        raise TrainingError(
            f"the model carries adapter(s) {', '.join(names)}; train() trains one adapter called 'default'"
        )
    if not names:
        set_seed(config.seed)  # the adapter's initialisation depends on the seed only
        attach(model, {"type": config.adapter, **config.adapter_options}, name="default")
    if quantized:
        prepare_kbit_training(model, gradient_checkpointing=checkpointing)
    use_cache = getattr(model.config, "use_cache", None)
    model.config.use_cache = False

    template = get_template(config.template)
    if template.needs_tokenizer:
        template = template.bind(tokenizer)
    tok_kwargs = dict(cutoff_len=config.cutoff_len, train_on_inputs=config.train_on_inputs, add_eos=config.add_eos)
    train_tok = tokenize_dataset(train_ds, tokenizer, template, **tok_kwargs)
    val_tok = tokenize_dataset(val_ds, tokenizer, template, **tok_kwargs) if val_ds is not None else None
    if len(train_tok) == 0:
        raise TrainingError(
            f"no training examples: {config.data} has {len(train_ds)} training record(s) and none has a response "
            f"token within cutoff_len={config.cutoff_len}"
        )

    args = training_arguments(
        config, has_eval=val_tok is not None, dtype=precision, gradient_checkpointing=checkpointing
    )
    with _adapters_declared(model):
        trainer = trainer_class()(
            model=model,
            args=args,
            train_dataset=train_tok,
            eval_dataset=val_tok,
            data_collator=RightPaddingCollator(tokenizer.pad_token_id),
            callbacks=callbacks,
        )
    trainer.adapter_keys = adapter_state_dict_keys(model, "default")
    with tempfile.TemporaryDirectory() as tmp:  # the adapter's identity, taken while it is whole
        saved = config_file(save_adapter(model, tmp, name="default"))
        trainer.adapter_config_file = (saved.name, saved.read_text(encoding="utf-8"))
    trainable, total = trainable_parameters(model)
    main = trainer.is_world_process_zero()
    if main:
        print(
            f"training adapter {config.adapter!r} on {model_name}: {trainable:,} trainable of {total:,} "
            f"parameters ({100 * trainable / total:.3f}%); {len(train_tok)} training and "
            f"{len(val_tok) if val_tok is not None else 0} validation examples; {args.world_size} process(es), "
            f"gradient accumulation {args.gradient_accumulation_steps}; {_precision_text(precision, quantized)}"
            + (f"; resuming from {resume_from}" if resume_from else "")
        )
    start = time.time()
    try:
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    except KeyboardInterrupt:
        last = latest_checkpoint(config.output)
        where = f"the last checkpoint is {last} (resume with --resume)" if last else "no checkpoint was written yet"
        raise TrainingInterrupted(f"training interrupted at step {trainer.state.global_step}; {where}", last) from None
    finally:
        model.config.use_cache = use_cache
    elapsed = time.time() - start

    out = Path(config.output)
    metrics: dict[str, Any] = {}
    plot = None
    if main:
        out.mkdir(parents=True, exist_ok=True)
        save_adapter(model, out, name="default")
        evals = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e]
        metrics = {
            "model": model_name,
            "adapter": config.adapter,
            "adapter_config": adapter_config(model, "default").model_dump(mode="json"),
            "train_loss": output.training_loss,
            "eval_loss": evals[-1] if evals else None,
            "best_eval_loss": min(evals) if evals else None,
            "global_step": trainer.state.global_step,
            "epoch": trainer.state.epoch,
            "train_examples": len(train_tok),
            "validation_examples": len(val_tok) if val_tok is not None else 0,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "precision": str(precision).removeprefix("torch."),
            "quantize": quantized,
            "gradient_checkpointing": checkpointing,
            "world_size": args.world_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "wall_seconds": elapsed,
            "resumed_from": str(resume_from) if resume_from else None,
            **{k: v for k, v in output.metrics.items() if k != "train_loss"},
            "log_history": trainer.state.log_history,
        }
        write_json(out / METRICS_NAME, metrics)
        atomic_write_text(out / RUN_CONFIG_NAME, config.model_dump_json(indent=2) + "\n")
        plot = plot_losses(trainer.state.log_history, out / PLOT_NAME, title=f"{config.adapter} on {model_name}")
    if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return TrainResult(out, metrics, plot, checkpoints(out), resume_from)
