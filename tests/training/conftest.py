from __future__ import annotations

from pathlib import Path

import pytest

import llm_adapters_templates
import llm_adapters_train
from llm_adapters.testing import use_plugins
from tests.core import probe_plugin

from .helpers import char_tokenizer, records, write_json


@pytest.fixture
def probe():
    """Run with exactly the core's inline probe plugin (a low-rank adapter and a LLaMA / GPT-2 family), the
    templates and the training plugin (its commands)."""
    with use_plugins(probe_plugin, llm_adapters_templates, llm_adapters_train) as pm:
        yield pm


@pytest.fixture
def tokenizer():
    return char_tokenizer()


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_json(tmp_path / "data.json", records(48))
