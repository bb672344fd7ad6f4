"""The plugin boundary: every hook a plugin can implement.

Plugins are ordinary Python distributions that declare an entry point in the group ``llm_adapters``
pointing at a module (or object) carrying ``@hookimpl`` functions. The core calls the hooks below through a
:mod:`pluggy` plugin manager built by :func:`llm_adapters.plugins.get_plugin_manager`.

Every hook is called through pluggy, one plugin at a time (:meth:`pluggy.PluginManager.subset_hook_caller`),
so that what each plugin provides is recorded against it and a plugin whose hook raises is skipped alone;
``tryfirst`` / ``trylast`` order the calls and hook wrappers wrap them as pluggy documents.

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
    from .source import ModelSource
    from .task import Task
    from .template import Template

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
    Receives: ``register``, to be called with each :class:`llm_adapters.task.Task` instance.
    Must: give each task a unique short lowercase ``name``; the core matches names case-insensitively.
    """


@hookspec
def register_templates(register: Callable[[Template], None]) -> None:
    """Provide prompt templates (how an instruction record becomes the text a model sees).

    When: once, the first time a template is looked up by name (training, evaluation, generation) or
    plugins are listed.
    Receives: ``register``, to be called with each :class:`llm_adapters.template.Template` instance.
    Must: give each template a unique ``name``.
    """


@hookspec
def register_model_sources(register: Callable[[ModelSource], None]) -> None:
    """Provide model sources: names or files that :func:`llm_adapters.load_model` turns into a checkpoint
    that transformers can load (an embedded model shipped in a package, a GGUF file, ...).

    When: once, the first time a model is loaded by name or plugins are listed.
    Receives: ``register``, to be called with each :class:`llm_adapters.source.ModelSource` instance.
    Must: give each source a unique ``name``; at most one installed source may declare ``default = True``
    (the model used when none is named).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``llm-adapters`` command line.

    When: each time the CLI starts, before arguments are parsed (the group is built anew for every call).
    Receives: ``cli``, the root :class:`click.Group`.
    Must: add commands with ``@cli.command()`` (or ``cli.add_command``), importing nothing heavy (torch,
    transformers) at this point: import inside the command's function, so that ``llm-adapters --help``
    stays instant. A command name already taken (the core's ``plugins`` or another plugin's) is an error
    reported against the later plugin; a plugin whose hook raises is skipped with a warning.
    """
