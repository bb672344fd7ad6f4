"""``llm-adapters export``: merge adapters into the base weights and save a plain transformers checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from llm_adapters.errors import LLMAdaptersError


@click.command("export")
@click.option(
    "--model",
    "model_name",
    default=None,
    help="Base model: an HF id, a local directory, or a name or file an installed model source handles "
    "(default: the installed default model).",
)
@click.option(
    "--adapter-path",
    "adapter_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="An adapter directory to merge (repeatable: all are merged, in order).",
)
@click.option("--output", required=True, type=click.Path(), help="Directory to write the merged model into.")
@click.option("--dtype", default="auto", show_default=True, help="float32, bfloat16, float16 or auto.")
@click.option("--max-shard-size", default="2GB", show_default=True, help="Largest safetensors shard.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["merged", "peft"]),
    default="merged",
    show_default=True,
    help="merged: a plain transformers checkpoint with the adapters merged in; peft: one adapter directory "
    "rewritten in PEFT's format (e.g. an adapter saved in this project's older format), for PEFT, transformers "
    "and vLLM.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a previous export in --output (only the files it wrote; anything else there is refused).",
)
def command(
    model_name: str | None,
    adapter_paths: tuple[str, ...],
    output: str,
    dtype: str,
    max_shard_size: str,
    fmt: str,
    overwrite: bool,
) -> None:
    """Merge adapters into the base model and save it as an ordinary checkpoint (safetensors + tokenizer),
    loadable with transformers alone. Only mergeable adapter types (e.g. LoRA) can be exported this way.

    The base is always loaded in full precision: an adapter trained on a quantized base (train --quantize)
    is merged into the full-precision weights it was quantized from (the QLoRA convention)."""
    from llm_adapters.files import load_adapter
    from llm_adapters.models import load_model

    from .export import export_merged, export_peft, prepare_export_dir

    try:
        if fmt == "peft" and len(adapter_paths) != 1:
            raise click.UsageError("--format peft converts one adapter directory: give --adapter-path once")
        prepare_export_dir(output, overwrite=overwrite, inputs=adapter_paths)  # before the model loads
        model, tokenizer = load_model(model_name, dtype=dtype)
        if fmt == "peft":
            load_adapter(model, adapter_paths[0], name="default")
            out = export_peft(model, "default", output, overwrite=overwrite)
            click.echo(f"wrote {adapter_paths[0]} in PEFT's format to {Path(out)}")
            return
        for i, path in enumerate(adapter_paths):
            load_adapter(model, path, name=f"adapter{i}")
        out = export_merged(model, tokenizer, output, max_shard_size=max_shard_size, overwrite=overwrite)
    except LLMAdaptersError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"merged {len(adapter_paths)} adapter(s) into {model.config._name_or_path}; wrote {Path(out)}")
