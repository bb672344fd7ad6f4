"""Training for llm-adapters: the ``train`` and ``export`` commands, as a plugin (entry point ``train`` in the
group ``llm_adapters``).

* :func:`llm_adapters_train.training.train`: fine-tune one adapter with the HF ``Trainer`` from a
  :class:`~llm_adapters_train.run_config.TrainConfig`;
* :mod:`.data`: instruction records (JSON / JSONL / datasets) to masked token sequences;
* :mod:`.checkpoints`, :mod:`.trainer`, :mod:`.curves`: adapter-only checkpoints, the Trainer, loss plots;
* :func:`llm_adapters_train.export.export_merged`: a plain transformers checkpoint with the adapters merged.
"""

from __future__ import annotations

from llm_adapters import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    from .cli_export import command as export_command
    from .cli_train import command as train_command

    cli.add_command(train_command)
    cli.add_command(export_command)
