"""The ``llm-adapters`` command line. Built-in commands live in :mod:`llm_adapters.commands`; plugins add
more through the ``register_commands`` hook."""

from __future__ import annotations

import importlib
import warnings

import click

from . import __version__
from .errors import LLMAdaptersError

#: built-in command modules; each defines a click command named ``command``
BUILTIN_COMMANDS = (
    "llm_adapters.commands.plugins",
    "llm_adapters.commands.train",
    "llm_adapters.commands.demo",
    "llm_adapters.commands.export",
    "llm_adapters.commands.evaluate",
    "llm_adapters.commands.generate",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llm-adapters")
def cli() -> None:
    """Parameter-efficient fine-tuning of LLMs with adapters (series, parallel, LoRA, prefix, ...).

    Adapter types, model families and tasks come from plugins: `llm-adapters plugins` lists them.
    """


def build_cli() -> click.Group:
    for mod in BUILTIN_COMMANDS:
        cli.add_command(importlib.import_module(mod).command)
    from .plugins import get_plugin_manager

    pm = get_plugin_manager()
    for name, record in list(pm.records.items()):
        if record.error is not None or record.plugin is None:
            continue
        for impl in pm.hook.register_commands.get_hookimpls():
            if impl.plugin is not record.plugin:
                continue
            try:
                impl.function(*[cli for _ in impl.argnames])
            except Exception as exc:
                pm.fail_plugin(name, f"{type(exc).__name__} in register_commands: {exc}")
    return cli


def main() -> None:
    warnings.filterwarnings("default", module="llm_adapters")
    try:
        group = build_cli()
    except LLMAdaptersError as exc:  # e.g. a failing plugin under LLM_ADAPTERS_STRICT_PLUGINS=1
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    try:
        group(prog_name="llm-adapters", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except LLMAdaptersError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
