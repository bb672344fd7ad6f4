"""``llm-adapters train``: fine-tune an adapter from a config file and/or flags (a flag wins over the file).

Every option of :class:`llm_adapters.run_config.TrainConfig` is a flag, with the field's description as its
help, so the command line, the config file and the documentation cannot drift apart.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

import click

from llm_adapters.cli import LazyCommand
from llm_adapters.config import parse_options
from llm_adapters.errors import LLMAdaptersError

#: flag names that differ from ``--field-name``, and extra short forms
ALIASES: dict[str, tuple[str, ...]] = {
    "num_epochs": ("--num-epochs", "--epochs"),
    "learning_rate": ("--learning-rate", "--lr"),
    "val_set_size": ("--val-set-size", "--val-size"),
}
#: fields set otherwise than by a plain flag
SPECIAL = {"adapter_options", "resume", "data", "output"}


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """``(click type, is_bool)`` for a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _click_type(args[0])
    if origin is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)]), False
    if annotation is bool:
        return None, True
    return {int: click.INT, float: click.FLOAT, str: click.STRING}.get(annotation, click.STRING), False


def _options() -> list[click.Option]:
    from .run_config import TrainConfig

    opts = []
    for name, info in TrainConfig.model_fields.items():
        if name in SPECIAL:
            continue
        ctype, is_bool = _click_type(info.annotation)
        flag = f"--{name.replace('_', '-')}"
        default = info.get_default(call_default_factory=True)
        help_text = f"{info.description} [default: {default}]"
        if is_bool:
            decls = [f"{flag}/--no-{name.replace('_', '-')}", name]
            opts.append(click.Option(decls, default=None, help=help_text))
        else:
            decls = [*ALIASES.get(name, (flag,)), name]
            opts.append(click.Option(decls, type=ctype, default=None, help=help_text))
    return opts


def _run(
    config_file: str | None,
    data: str | None,
    output: str | None,
    options: tuple[str, ...],
    resume: bool,
    resume_from: str | None,
    **flags: Any,
) -> None:
    from .errors import TrainingInterrupted
    from .run_config import build_config
    from .training import train

    flags["data"] = data
    flags["output"] = output
    if resume_from is not None:
        flags["resume"] = resume_from
    elif resume:
        flags["resume"] = True
    try:
        adapter_options = parse_options(options)
        config = build_config(config_file, flags, adapter_options)
        result = train(config)
    except TrainingInterrupted as exc:
        click.echo(f"\n{exc}", err=True)
        sys.exit(130)
    except LLMAdaptersError as exc:
        raise click.ClickException(str(exc)) from None
    if result.metrics:
        m = result.metrics
        click.echo(
            f"done: {m['global_step']} steps, training loss {m['train_loss']:.4f}"
            + (f", validation loss {m['eval_loss']:.4f}" if m.get("eval_loss") is not None else "")
        )
        click.echo(f"adapter:  {result.output_dir}  (llm_adapters.load_adapter(model, '{result.output_dir}'))")
        click.echo(f"metrics:  {result.output_dir / 'metrics.json'}")
        if result.plot is not None:
            click.echo(f"loss plot: {result.plot}")


def _params() -> list[click.Parameter]:
    """The command's parameters: every field of the run config as a flag (built when the command runs or
    shows its help, so that listing the commands does not import pydantic)."""
    from .run_config import TrainConfig

    return [
        click.Argument(["config_file"], required=False, type=click.Path(dir_okay=False)),
        click.Option(["--data", "data"], default=None, help=TrainConfig.model_fields["data"].description),
        click.Option(["--output", "output"], default=None, help=TrainConfig.model_fields["output"].description),
        click.Option(
            ["-o", "--option", "options"],
            multiple=True,
            metavar="KEY=VALUE",
            help="An adapter option (repeatable), e.g. -o r=32 -o alpha=64 -o target_modules=attn.q,attn.v; "
            "values are read as JSON when they parse. Merged over the config file's adapter_options.",
        ),
        click.Option(
            ["--resume", "resume"],
            is_flag=True,
            default=False,
            help="Continue from the latest complete checkpoint in the output directory, at the same step.",
        ),
        click.Option(
            ["--resume-from", "resume_from"],
            default=None,
            type=click.Path(file_okay=False),
            help="Continue from this checkpoint directory.",
        ),
        *_options(),
    ]


command = LazyCommand(
    "train",
    callback=_run,
    make_params=_params,
    help="""Fine-tune an adapter on instruction data (JSON / JSONL records with instruction, input, output).

    CONFIG is an optional YAML or JSON file with the same fields as the flags (e.g. examples/*.yaml);
    a flag given on the command line wins over the file. Writes into --output: the final adapter
    (adapter_config.json + adapter_model.safetensors), metrics.json, loss.png, train_config.json and
    checkpoint-N/ directories (adapter-only safetensors plus the trainer state).

    Runs unchanged under torchrun, e.g.
    torchrun --nproc_per_node 2 --no-python llm-adapters train ...
    """,
    short_help="Fine-tune an adapter on instruction data.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)
