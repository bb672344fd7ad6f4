"""The llm-adapters demo: the ``demo`` command (a real model visibly learns arithmetic word problems in
minutes on a CPU) and its problems as the task ``arithmetic``. Entry point ``demo`` in the group
``llm_adapters``."""

from __future__ import annotations

from llm_adapters import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from .cli import command

    cli.add_command(command)


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    from .task import ArithmeticTask

    register(ArithmeticTask())
