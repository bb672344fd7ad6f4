"""Shared set-up of the scale tests: the installed plugins, tiny LLaMA / GPT-2 models saved to disk with a
character tokenizer, and the bitsandbytes marker."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from llm_adapters.testing import tiny_model_from_config, use_plugins
from tests.training.helpers import char_tokenizer

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None
needs_bnb = pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed (pip install 'llm-adapters[quant]')")

#: small enough to train in a second, large enough for 4-bit blocks (64 values) to fill whole rows
TINY_LLAMA = {
    "model_type": "llama",
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
    "bos_token_id": 2,
    "eos_token_id": 3,
}
TINY_GPT2 = {
    "model_type": "gpt2",
    "vocab_size": 128,
    "n_embd": 64,
    "n_inner": 128,
    "n_layer": 2,
    "n_head": 4,
    "n_positions": 64,
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "attn_pdrop": 0.0,
    "bos_token_id": 2,
    "eos_token_id": 3,
}


@pytest.fixture(autouse=True)
def installed_plugins():
    """The plugins installed in this environment (LoRA, series, parallel, prompt methods, the families)."""
    with use_plugins(entry_points=True) as pm:
        yield pm


def save_tiny(directory: Path, config: dict, seed: int = 0) -> Path:
    model = tiny_model_from_config(config, seed=seed)
    model.save_pretrained(directory)
    char_tokenizer().save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-llama"), TINY_LLAMA)


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-gpt2"), TINY_GPT2)
