"""The ``llm-adapters`` command line: a shell whose only built-in command is ``plugins``; every other
command comes from a plugin through the ``register_commands`` hook, exactly as a third party adds one.

The group is built anew by every call of :func:`build_cli`, from the plugins installed (and allowed) at
that moment, so a command never outlives its plugin. Nothing heavy is imported here: ``llm-adapters
--help`` loads the plugins' entry points and click, not torch.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .errors import LLMAdaptersError, PluginError

ENV_DEBUG = "LLM_ADAPTERS_DEBUG"
HELP = """Parameter-efficient fine-tuning of LLMs with adapters (series, parallel, LoRA, prefix, ...).

Adapter types, model families, tasks and most commands come from plugins: `llm-adapters plugins` lists them.
"""


def build_cli() -> click.Group:
    """A new root group: the built-in ``plugins`` command plus every working plugin's commands."""
    from .listing import command as plugins_command
    from .plugins import get_plugin_manager

    group = click.Group(
        "llm-adapters",
        help=HELP,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
        params=[
            click.Option(
                ["--version"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                callback=_print_version,
                help="Show the version and exit.",
            )
        ],
    )
    group.add_command(plugins_command)
    pm = get_plugin_manager()
    owners = {"plugins": "llm-adapters-core"}

    def kwargs_for(plugin: str) -> dict[str, object]:
        return {"cli": _Recording(group, plugin, owners, pm.records[plugin].commands)}

    pm.call_each("register_commands", kwargs_for)
    # a plugin that failed part-way takes its commands with it
    for name, owner in list(owners.items()):
        record = pm.records.get(owner)
        if record is not None and record.error is not None:
            group.commands.pop(name, None)
    return group


class LazyCommand(click.Command):
    """A command whose parameters are built on first use: ``make_params()`` runs when the command is parsed
    or its own ``--help`` is shown, not when the group lists it. For plugin commands whose options come from
    a pydantic model or other heavy imports, so that ``llm-adapters --help`` stays instant."""

    def __init__(self, name: str, *, make_params: Callable[[], list[click.Parameter]], **kwargs: Any) -> None:
        self._make_params = make_params
        self._built: list[click.Parameter] | None = None
        super().__init__(name, **kwargs)

    @property  # type: ignore[override]
    def params(self) -> list[click.Parameter]:
        if self._built is None:
            self._built = list(self._make_params())
        return self._built

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        if value:  # click's own __init__ sets [] first: keep the parameters unbuilt until they are needed
            self._built = list(value)


class _Recording:
    """What a plugin's ``register_commands`` receives: the root group, recording which plugin added which
    command and refusing a name already taken."""

    def __init__(self, group: click.Group, plugin: str, owners: dict[str, str], into: list[str]) -> None:
        self._group, self._plugin, self._owners, self._into = group, plugin, owners, into

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        assert name is not None
        if name in self._owners:
            raise PluginError(f"command {name!r} is already provided by {self._owners[name]!r}")
        self._owners[name] = self._plugin
        self._into.append(name)
        self._group.add_command(cmd, name)

    def command(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        def decorator(f):  # type: ignore[no-untyped-def]
            cmd = click.command(*args, **kwargs)(f)  # type: ignore[arg-type]
            self.add_command(cmd)
            return cmd

        return decorator

    def group(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        def decorator(f):  # type: ignore[no-untyped-def]
            grp = click.group(*args, **kwargs)(f)  # type: ignore[arg-type]
            self.add_command(grp)
            return grp

        return decorator

    def __getattr__(self, name: str) -> object:  # anything else a click.Group offers
        return getattr(self._group, name)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"llm-adapters, version {__version__}")
        ctx.exit()


def _debug() -> bool:
    return os.environ.get(ENV_DEBUG, "").strip().lower() in {"1", "true", "yes", "on"}


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, *args: Any) -> None:
    """Our own warnings as one clean line on stderr (no file, line or source echo); others as Python shows
    them."""
    text = str(message)
    if text.startswith("llm-adapters") or "llm_adapters" in filename.replace("-", "_"):
        click.echo(text if text.startswith("llm-adapters") else f"llm-adapters: warning: {text}", err=True)
    else:
        _python_show_warning(message, category, filename, lineno, *args)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> None:
    from .plugins import deferred_strict, failures, get_plugin_manager, strict

    warnings.filterwarnings("default", module="llm_adapters")
    warnings.showwarning = _show_warning
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with deferred_strict():  # list every failing plugin before strict mode refuses
            group = build_cli()
            if strict():
                from .registry import get_registry

                get_registry(allow_conflicts=True)
    except LLMAdaptersError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:  # Ctrl-C while plugins load
        click.echo("Interrupted.", err=True)
        raise SystemExit(130) from None
    failed = failures(get_plugin_manager()) if strict() else []
    if failed:
        command = next((a for a in args if not a.startswith("-")), None)
        if command == "plugins":  # strict mode still lists, then fails
            try:
                group.main(args=args, prog_name="llm-adapters", standalone_mode=False)
            except click.ClickException:
                pass
        for line in failed:
            click.echo(f"Error: {line} (LLM_ADAPTERS_STRICT_PLUGINS is set)", err=True)
        raise SystemExit(1)
    try:
        group.main(args=args, prog_name="llm-adapters", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except LLMAdaptersError as exc:
        if _debug():
            raise
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        raise SystemExit(130) from None
    except Exception as exc:  # a bug or an environment problem: one line, the traceback on request
        if _debug():
            raise
        click.echo(f"Error: {type(exc).__name__}: {exc} (set {ENV_DEBUG}=1 to see where it came from)", err=True)
        raise SystemExit(1) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
