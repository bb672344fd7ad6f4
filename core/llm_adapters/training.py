"""Fine-tuning with the HF ``Trainer`` (accelerate underneath: one process, DDP under torchrun, FSDP or
DeepSpeed through an accelerate config).

What is ours: the adapter is attached with :func:`llm_adapters.attach`; checkpoints hold the adapter only
(``adapter_model.safetensors`` + ``adapter_config.json`` through :func:`llm_adapters.save_adapter`) next to
the Trainer's own state files (``trainer_state.json``, ``optimizer.pt``, ``scheduler.pt``, ``rng_state*.pth``,
written and read by the Trainer itself with ``weights_only=True``); the Trainer's pickled
``training_args.bin`` is replaced by ``training_args.json``. Resuming loads the adapter from the checkpoint's
safetensors and lets the Trainer restore its state, so the run continues at the same step. The output
directory ends with the final adapter (loadable with :func:`llm_adapters.load_adapter`), ``metrics.json``,
``loss.png`` and ``train_config.json``.

A checkpoint is complete once its ``trainer_state.json`` exists (the Trainer writes it last);
:func:`latest_checkpoint` skips incomplete ones, so a run killed while saving still resumes from the last
complete checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data import RightPaddingCollator, load_records, split_records, tokenize_dataset
from .engine import _state, adapter_tensors, list_adapters, trainable_parameters
from .errors import LLMAdaptersError
from .files import CONFIG_NAME, WEIGHTS_NAME, load_adapter_weights, save_adapter
from .prompts import get_template
from .run_config import TrainConfig

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
METRICS_NAME = "metrics.json"
PLOT_NAME = "loss.png"
RUN_CONFIG_NAME = "train_config.json"


class TrainingError(LLMAdaptersError):
    """A training run could not start or continue."""


class TrainingInterrupted(TrainingError):
    """The run was interrupted (Ctrl-C); ``checkpoint`` is the last complete checkpoint, if any."""

    def __init__(self, message: str, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


@dataclass
class TrainResult:
    """What :func:`train` wrote and measured."""

    output_dir: Path
    metrics: dict[str, Any]
    plot: Path | None
    checkpoints: list[Path] = field(default_factory=list)
    resumed_from: Path | None = None


# ---- checkpoints ----------------------------------------------------------------------------------
def is_complete_checkpoint(path: Path) -> bool:
    """A checkpoint directory holding the adapter and the Trainer's state (written last)."""
    return all((path / name).is_file() for name in (WEIGHTS_NAME, CONFIG_NAME, TRAINER_STATE))


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest (lowest step) first."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    found = []
    for child in d.iterdir():
        m = CHECKPOINT_RE.match(child.name)
        if m and child.is_dir() and is_complete_checkpoint(child):
            found.append((int(m.group(1)), child))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    found = checkpoints(output_dir)
    return found[-1] if found else None


def adapter_state_dict_keys(model: nn.Module, name: str = "default") -> dict[str, str]:
    """For each tensor of adapter ``name``: its file key -> its key in ``model.state_dict()``."""
    by_storage = {
        (t.data_ptr(), tuple(t.shape)): key for key, t in model.state_dict(keep_vars=True).items() if t.numel()
    }
    out = {}
    for file_key, t in adapter_tensors(model, name).items():
        sd_key = by_storage.get((t.data_ptr(), tuple(t.shape)))
        if sd_key is None:
            raise TrainingError(f"adapter tensor {file_key} is not in the model's state dict")
        out[file_key] = sd_key
    return out


def save_gathered_adapter(state_dict: dict[str, Any], keys: dict[str, str], config_text: str, out: Path) -> None:
    """Write an adapter directory from a gathered full state dict (see :func:`adapter_state_dict_keys`)."""
    from safetensors.torch import save_file

    missing = [sd for sd in keys.values() if sd not in state_dict]
    if missing:
        raise TrainingError(f"the gathered state dict lacks adapter tensors, e.g. {missing[:3]}")
    tensors = {fk: state_dict[sk].detach().to("cpu").contiguous() for fk, sk in keys.items()}
    tmp = out / f".{WEIGHTS_NAME}.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out / WEIGHTS_NAME)
    tmp = out / f".{CONFIG_NAME}.tmp"
    tmp.write_text(config_text)
    os.replace(tmp, out / CONFIG_NAME)


# ---- the Trainer --------------------------------------------------------------------------------
def _trainer_class() -> type:
    from transformers import Trainer

    class AdapterTrainer(Trainer):
        """A Trainer whose checkpoints hold the adapter only, in safetensors."""

        adapter_name = "default"
        #: file key -> state-dict key, and the adapter_config.json text, taken before any sharding
        adapter_keys: dict[str, str] | None = None
        adapter_config_text: str | None = None

        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            output_dir = output_dir or self.args.output_dir
            if not self.args.should_save:
                return
            os.makedirs(output_dir, exist_ok=True)
            if state_dict is not None and self.adapter_keys and self.adapter_config_text:
                # FSDP (full state dict) and DeepSpeed hand over the gathered weights: take the adapter's
                save_gathered_adapter(state_dict, self.adapter_keys, self.adapter_config_text, Path(output_dir))
            else:
                save_adapter(self.model, output_dir, name=self.adapter_name)
            Path(output_dir, "training_args.json").write_text(self.args.to_json_string())

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


def training_arguments(config: TrainConfig, *, has_eval: bool, dtype: torch.dtype) -> Any:
    from transformers import TrainingArguments

    n = world_size()
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
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
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


# ---- outputs ------------------------------------------------------------------------------------
def loss_curves(log_history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """``{"train": [(step, loss)], "eval": [(step, eval_loss)]}`` from the Trainer's log history."""
    train = [(int(e["step"]), float(e["loss"])) for e in log_history if "loss" in e and "step" in e]
    evals = [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e and "step" in e]
    return {"train": train, "eval": evals}


def plot_losses(log_history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Write the loss curve(s) as a PNG; returns None (with a warning) if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        import warnings

        warnings.warn("matplotlib is not installed, so no loss plot was written: pip install matplotlib", stacklevel=2)
        return None
    curves = loss_curves(log_history)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if curves["train"]:
        ax.plot(
            *zip(*curves["train"], strict=True),
            label="training loss",
            marker="." if len(curves["train"]) < 30 else None,
        )
    if curves["eval"]:
        ax.plot(*zip(*curves["eval"], strict=True), label="validation loss", marker="o")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# ---- the run ------------------------------------------------------------------------------------
def _prepare_output(config: TrainConfig) -> Path | None:
    out = Path(config.output)
    if config.resume:
        if isinstance(config.resume, str):
            ckpt = Path(config.resume)
            if not is_complete_checkpoint(ckpt):
                raise TrainingError(
                    f"cannot resume from {ckpt}: not a complete checkpoint (needs {WEIGHTS_NAME}, {CONFIG_NAME} "
                    f"and {TRAINER_STATE})"
                )
            return ckpt
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
    if config.overwrite and int(os.environ.get("RANK", "0")) == 0:  # under torchrun rank 0 alone deletes
        for p in existing:
            shutil.rmtree(p, ignore_errors=True)
    return None


def train(
    config: TrainConfig,
    *,
    model: nn.Module | None = None,
    tokenizer: Any = None,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Run a fine-tuning described by ``config``; ``model`` / ``tokenizer`` replace loading ``config.model``
    (a model may already carry the adapter ``default``, e.g. to continue training it)."""
    from transformers import set_seed

    if (model is None) != (tokenizer is None):
        raise TrainingError("pass both model and tokenizer, or neither")
    # everything that can fail fast does so before the model is loaded
    resume_from = _prepare_output(config)
    records = load_records(config.data, limit=config.limit)
    train_ds, val_ds = split_records(records, config.val_set_size, seed=config.seed)
    get_template(config.template)
    if model is None:
        from .models import load_model

        model, tokenizer = load_model(config.model, dtype=config.dtype, device="cpu")
        model_name = config.model
    else:
        model_name = getattr(model.config, "_name_or_path", None) or config.model
    from .models import ensure_pad_token

    ensure_pad_token(tokenizer)

    names = [a.name for a in list_adapters(model)]
    if names and names != ["default"]:
        raise TrainingError(
            f"the model carries adapter(s) {', '.join(names)}; train() trains one adapter called 'default'"
        )
    if not names:
        import llm_adapters as la

        set_seed(config.seed)  # the adapter's initialisation depends on the seed only
        la.attach(model, {"type": config.adapter, **config.adapter_options}, name="default")
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

    dtype = next(p.dtype for p in model.parameters())
    args = training_arguments(config, has_eval=val_tok is not None, dtype=dtype)
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=train_tok,
        eval_dataset=val_tok,
        data_collator=RightPaddingCollator(tokenizer.pad_token_id),
        callbacks=callbacks,
    )
    trainer.adapter_keys = adapter_state_dict_keys(model, "default")
    with tempfile.TemporaryDirectory() as tmp:  # the adapter's identity, taken while it is whole
        trainer.adapter_config_text = (save_adapter(model, tmp, name="default") / CONFIG_NAME).read_text()
    trainable, total = trainable_parameters(model)
    main = trainer.is_world_process_zero()
    if main:
        print(
            f"training adapter {config.adapter!r} on {model_name}: {trainable:,} trainable of {total:,} "
            f"parameters ({100 * trainable / total:.3f}%); {len(train_tok)} training and "
            f"{len(val_tok) if val_tok is not None else 0} validation examples; {args.world_size} process(es), "
            f"gradient accumulation {args.gradient_accumulation_steps}"
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
            "adapter_config": _state(model).records["default"].config.model_dump(mode="json"),
            "train_loss": output.training_loss,
            "eval_loss": evals[-1] if evals else None,
            "best_eval_loss": min(evals) if evals else None,
            "global_step": trainer.state.global_step,
            "epoch": trainer.state.epoch,
            "train_examples": len(train_tok),
            "validation_examples": len(val_tok) if val_tok is not None else 0,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "world_size": args.world_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "wall_seconds": elapsed,
            "resumed_from": str(resume_from) if resume_from else None,
            **{k: v for k, v in output.metrics.items() if k != "train_loss"},
            "log_history": trainer.state.log_history,
        }
        (out / METRICS_NAME).write_text(json.dumps(_clean(metrics), indent=2) + "\n")
        (out / RUN_CONFIG_NAME).write_text(config.model_dump_json(indent=2) + "\n")
        plot = plot_losses(trainer.state.log_history, out / PLOT_NAME, title=f"{config.adapter} on {model_name}")
    if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return TrainResult(out, metrics, plot, checkpoints(out), resume_from)
