"""The plugin boundary: every hook a plugin can implement.

Plugins are ordinary Python distributions that declare an entry point in the group ``llm_adapters``
pointing at a module (or object) carrying ``@hookimpl`` functions. The core calls the hooks below through a
:mod:`pluggy` plugin manager built by :func:`llm_adapters.plugins.get_plugin_manager`.

Register-style hooks receive a ``register`` callable: a plugin calls it once per thing it provides. The core
owns the collection, checks names and records which distribution registered what, so that
``llm-adapters plugins`` can show it and two plugins claiming one name are reported by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .adapter import AdapterType
    from .family import ModelFamily
    from .tasks import Task

PROJECT = "llm_adapters"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_adapters(register: Callable[[type[AdapterType]], None]) -> None:
    """Provide adapter types.

    When: once, the first time the core needs the adapter registry (attaching, loading an adapter file,
    parsing a config, or listing plugins).
    Receives: ``register``, to be called with each :class:`llm_adapters.adapter.AdapterType` subclass the
    plugin provides. The class's ``name`` is the config's ``type`` key and must be unique across plugins.
    Must: call ``register`` with classes only; do no heavy work (no model loading) here.
    """


@hookspec
def register_model_families(register: Callable[[ModelFamily], None]) -> None:
    """Provide model families: architectures described as data.

    When: once, the first time the core needs the family registry (resolving roles such as ``attn.q`` on a
    model, or listing plugins).
    Receives: ``register``, to be called with each :class:`llm_adapters.family.ModelFamily` instance.
    Must: give each family a unique ``name`` and the transformers ``model_type`` values it covers; a
    ``model_type`` may be claimed by one family only.
    """


@hookspec
def register_tasks(register: Callable[[type[Task] | Task], None]) -> None:
    """Provide evaluation tasks (data sets with a prompt, an answer extraction and a metric).

    When: once, the first time the core needs the task registry (``llm-adapters evaluate``, or listing
    plugins).
    Receives: ``register``, to be called with each :class:`llm_adapters.tasks.Task` instance.
    Must: give each task a unique short lowercase ``name``; the core matches names case-insensitively.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``llm-adapters`` command line.

    When: each time the CLI starts, before arguments are parsed.
    Receives: ``cli``, the root :class:`click.Group`.
    Must: add commands with ``@cli.command()`` (or ``cli.add_command``); command names must not clash with
    the built-in ones. A plugin whose hook raises is skipped with a warning; the CLI still starts.
    """
