"""``llm-adapters fuse``: train an AdapterFusion over trained adapter directories on a data file.

A thin wrapper over the training plugin: it builds a run config with ``adapter="fusion"`` and
``adapter_options={"adapters": [...]}`` and calls :func:`llm_adapters_train.training.train`.
"""

from __future__ import annotations

import sys
from typing import Any

import click


def _run(adapter_paths: tuple[str, ...], temperature: float | None, residual_before: bool | None, **flags: Any) -> None:
    from llm_adapters.errors import LLMAdaptersError
    from llm_adapters_train.errors import TrainingInterrupted
    from llm_adapters_train.run_config import build_config
    from llm_adapters_train.training import train

    options: dict[str, Any] = {"adapters": list(adapter_paths)}
    if temperature is not None:
        options["temperature"] = temperature
    if residual_before is not None:
        options["residual_before"] = residual_before
    flags = {k: v for k, v in flags.items() if v is not None}
    try:
        config = build_config(None, {**flags, "adapter": "fusion", "adapter_options": options})
        result = train(config)
    except TrainingInterrupted as exc:
        click.echo(f"\n{exc}", err=True)
        sys.exit(130)
    except LLMAdaptersError as exc:
        raise click.ClickException(str(exc)) from None
    if result.metrics:
        m = result.metrics
        click.echo(f"done: {m['global_step']} steps, training loss {m['train_loss']:.4f}")
        click.echo(f"fusion:   {result.output_dir}  (llm_adapters.load_adapter(model, '{result.output_dir}'))")


@click.command(
    "fuse",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
    short_help="Train an AdapterFusion over several trained adapters.",
)
@click.option(
    "--adapter-path",
    "adapter_paths",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False),
    help="A trained series or parallel adapter directory to fuse (repeat: two or more).",
)
@click.option(
    "--data", required=True, help="Training data: .json / .jsonl / .parquet / .arrow file, directory, or hub name."
)
@click.option("--output", required=True, help="Output directory: the fusion adapter, checkpoints, metrics, plot.")
@click.option("--model", default=None, help="Base model (the one the fused adapters were trained on).")
@click.option("--temperature", type=float, default=None, help="Softmax temperature of the fusion [default: 1.0].")
@click.option(
    "--residual-before/--residual-after",
    "residual_before",
    default=None,
    help="Where the residual goes [default: after].",
)
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimizer steps.")
@click.option("--num-epochs", "--epochs", "num_epochs", type=float, default=None, help="Passes over the data.")
@click.option("--learning-rate", "--lr", "learning_rate", type=float, default=None, help="Peak learning rate.")
@click.option("--batch-size", type=int, default=None, help="Examples per optimizer step.")
@click.option("--micro-batch-size", type=int, default=None, help="Examples per forward pass.")
@click.option("--warmup-steps", type=int, default=None, help="Linear warm-up steps.")
@click.option("--val-set-size", type=float, default=None, help="Validation records (>= 1) or fraction (< 1).")
@click.option("--template", default=None, help="Prompt template.")
@click.option("--cutoff-len", type=int, default=None, help="Maximum tokens per example.")
@click.option("--seed", type=int, default=None, help="Seed.")
@click.option("--dtype", default=None, help="Weights dtype: auto, float32, bfloat16, float16.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace an adapter or checkpoints in --output.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar.")
def command(**kwargs: Any) -> None:
    """Train an AdapterFusion (Pfeiffer et al., 2021) over trained adapters on instruction data.

    The fused adapters stay frozen; only the fusion's Query, Key and Value projections train. Writes the
    fusion into --output (its file holds Query, Key and Value only; its config records the adapters' absolute
    paths, which loading it reads again), with metrics.json and checkpoints as `llm-adapters train` does.

    Example: llm-adapters fuse --adapter-path out/a --adapter-path out/b --data data.json --output out/fusion
    """
    _run(**kwargs)
