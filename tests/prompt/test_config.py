"""Config validation of the three types: defaults, and errors that name the adapter, field and value."""

from __future__ import annotations

import pytest

from llm_adapters.config import parse_config
from llm_adapters.errors import ConfigError
from llm_adapters_prompt import PrefixConfig, PromptConfig, PTuningConfig


def test_defaults() -> None:
    prefix = parse_config({"type": "prefix"})
    assert isinstance(prefix, PrefixConfig)
    assert (prefix.num_virtual_tokens, prefix.prefix_projection, prefix.encoder_hidden_size) == (10, False, None)
    prompt = parse_config({"type": "prompt"})
    assert isinstance(prompt, PromptConfig) and (prompt.num_virtual_tokens, prompt.init) == (10, "random")
    ptuning = parse_config({"type": "ptuning"})
    assert isinstance(ptuning, PTuningConfig)
    assert (ptuning.encoder, ptuning.encoder_num_layers, ptuning.encoder_dropout) == ("mlp", 2, 0.0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"type": "prefix", "num_virtual_tokens": 0},
            "adapter 'prefix': num_virtual_tokens: input should be greater than or equal to 1, got 0",
        ),
        (
            {"type": "prefix", "encoder_hidden_size": 64},
            "adapter 'prefix': encoder_hidden_size: applies only with prefix_projection=true, got 64",
        ),
        (
            {"type": "prefix", "init": "text", "init_text": "hi", "prefix_projection": True},
            "adapter 'prefix': prefix_projection: cannot be combined with init='text' (the MLP cannot be set to "
            "given keys), got True",
        ),
        (
            {"type": "prefix", "target_modules": ["attn.q"]},
            "adapter 'prefix': target_modules: prompt-based adapters act on the whole model and take no "
            "target_modules, got ['attn.q']",
        ),
        ({"type": "prefix", "virtual_tokens": 4}, "adapter 'prefix': unknown field 'virtual_tokens'"),
        (
            {"type": "prompt", "init": "text"},
            "adapter 'prompt': init_token_ids: init='text' needs init_text or init_token_ids, got None",
        ),
        ({"type": "prompt", "init_text": "hi"}, "adapter 'prompt': init_text: applies only with init='text', got 'hi'"),
        (
            {"type": "prompt", "init": "text", "init_token_ids": [3, -1]},
            "adapter 'prompt': init_token_ids: token ids must be >= 0, got [3, -1]",
        ),
        (
            {"type": "ptuning", "encoder_num_layers": 3},
            "adapter 'ptuning': encoder_num_layers: applies only with encoder='lstm', got 3",
        ),
        (
            {"type": "ptuning", "encoder": "lstm", "encoder_dropout": 1.0},
            "adapter 'ptuning': encoder_dropout: input should be less than 1, got 1.0",
        ),
        (
            {"type": "ptuning", "encoder": "gru"},
            "adapter 'ptuning': encoder: input should be 'mlp' or 'lstm', got 'gru'",
        ),
    ],
)
def test_errors_name_adapter_field_and_value(config: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(config)
    assert str(exc.value) == message


def test_saved_mlp_config_with_every_field_loads() -> None:
    """A saved config holds every field (defaults included); the LSTM-only fields at their defaults pass."""
    dumped = parse_config({"type": "ptuning"}).model_dump(mode="json")
    assert parse_config(dumped) == parse_config({"type": "ptuning"})


def test_every_field_is_described() -> None:
    for cls in (PrefixConfig, PromptConfig, PTuningConfig):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"
