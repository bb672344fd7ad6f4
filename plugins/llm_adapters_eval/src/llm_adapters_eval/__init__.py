"""Evaluation and generation for llm-adapters: the ``evaluate`` and ``generate`` commands, as a plugin (entry
point ``eval`` in the group ``llm_adapters``).

* :mod:`.generation`: batched, left-padded greedy / beam generation with a KV cache, and streaming;
* :mod:`.loglik`: log-likelihood scoring of multiple-choice options;
* :mod:`.config`, :mod:`.runner`, :mod:`.report`: an evaluation run over installed tasks, and its reports.
"""

from __future__ import annotations

from llm_adapters import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from .cli_evaluate import command as evaluate_command
    from .cli_generate import command as generate_command

    cli.add_command(evaluate_command)
    cli.add_command(generate_command)
