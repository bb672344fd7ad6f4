"""Run the ``llm-adapters`` CLI with exactly the core's inline probe plugin, the templates and the training
plugin (for subprocess tests, including under torchrun): ``python -m tests.training.run_cli train ...`` from
the repository root."""

from __future__ import annotations

import sys

import torch

import llm_adapters_templates
import llm_adapters_train
from llm_adapters.cli import build_cli
from llm_adapters.testing import use_plugins
from tests.core import probe_plugin

if __name__ == "__main__":
    torch.set_num_threads(1)
    with use_plugins(probe_plugin, llm_adapters_templates, llm_adapters_train):
        build_cli()(args=sys.argv[1:], prog_name="llm-adapters")
