"""The LLM-Adapters paper's tables in miniature: the ``reproduce`` command, as a plugin (entry point
``reproduce`` in the group ``llm_adapters``).

* :mod:`.grid`: the grid file (methods, training data and settings, tasks) and the presets shipped as YAML;
* :mod:`.plan`: the grid checked against the installed plugins and the data, before anything runs;
* :mod:`.runner`: train each method, evaluate the zero-shot base and every adapter on every task;
* :mod:`.results`, :mod:`.report`, :mod:`.paper`: ``results.json``, ``results.md`` with the paper's published
  rows beside ours, ``results.png``.
"""

from __future__ import annotations

from llm_adapters import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from .cli import command

    cli.add_command(command)
