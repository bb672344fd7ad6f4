"""Evaluation and generation for llm-adapters: the ``evaluate`` and ``generate`` commands, as a plugin (entry
point ``eval`` in the group ``llm_adapters``).

* :mod:`.decoding`: the step-wise batched decoder (greedy, sampling, stop strings, an adapter and a streaming
  callback per row; finished rows leave the batch, waiting ones join it);
* :mod:`.generation`: batched, left-padded generation for evaluation (the decoder; beam search through
  ``model.generate``), and streaming;
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
