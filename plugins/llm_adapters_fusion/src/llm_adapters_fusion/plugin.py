"""Entry point of the ``llm-adapters-fusion`` plugin (group ``llm_adapters``, name ``fusion``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_adapters import hookimpl


@hookimpl
def register_adapters(register: Callable[[type], None]) -> None:
    # imported here, not at module level: loading the entry point (say, for `llm-adapters --help`) stays cheap
    from .adapter import Fusion

    register(Fusion)


@hookimpl
def register_commands(cli: Any) -> None:
    from .cli_fuse import command

    cli.add_command(command)
