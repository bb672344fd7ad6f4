"""The ``lora`` config: reference defaults, presets, scale, and validation messages that name the adapter,
the field and the value."""

from __future__ import annotations

import math

import pytest

from llm_adapters.config import parse_config
from llm_adapters.errors import ConfigError
from llm_adapters_lora import LoRA, LoRAConfig


def test_defaults_are_the_reference_finetune_settings() -> None:
    cfg = parse_config({"type": "lora"})
    assert isinstance(cfg, LoRAConfig)
    assert (cfg.r, cfg.alpha, cfg.dropout) == (8, 16.0, 0.05)
    assert (cfg.use_rslora, cfg.use_dora, cfg.preset, cfg.target_modules) == (False, False, "reference", None)
    assert cfg.scale == 2.0


def test_every_field_is_described() -> None:
    for name, info in LoRAConfig.model_fields.items():
        assert info.description, name


@pytest.mark.parametrize(
    ("r", "alpha", "rslora", "expected"),
    [(8, 16, False, 2.0), (32, 64, False, 2.0), (16, 16, True, 4.0), (4, 8, True, 4.0), (5, 3, False, 0.6)],
)
def test_scale(r: int, alpha: float, rslora: bool, expected: float) -> None:
    cfg = LoRAConfig(r=r, alpha=alpha, use_rslora=rslora)
    assert math.isclose(cfg.scale, expected)


def test_presets_and_explicit_targets() -> None:
    lora = LoRA()
    ref = lora.placements(LoRAConfig())
    assert [(p.target, p.kind, p.regex) for p in ref] == [("attn.q", "parallel", False), ("attn.v", "parallel", False)]
    best = lora.placements(LoRAConfig(preset="paper-best"))
    assert [p.target for p in best] == ["attn.q", "attn.k", "attn.v", "mlp.up", "mlp.down"]
    explicit = lora.placements(LoRAConfig(preset="paper-best", target_modules=["q_proj"]))
    assert [p.target for p in explicit] == ["q_proj"]
    regex = lora.placements(LoRAConfig(target_modules=r".*\.q_proj"))
    assert [(p.target, p.regex) for p in regex] == [(r".*\.q_proj", True)]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("r", 0, "adapter 'lora': r: input should be greater than or equal to 1, got 0"),
        ("r", 2.5, "adapter 'lora': r: input should be a valid integer, got a number with a fractional part (2.5)"),
        ("alpha", 0, "adapter 'lora': alpha: input should be greater than 0, got 0"),
        ("alpha", -4.0, "adapter 'lora': alpha: input should be greater than 0, got -4.0"),
        ("dropout", 1.0, "adapter 'lora': dropout: input should be less than 1, got 1.0"),
        ("dropout", -0.1, "adapter 'lora': dropout: input should be greater than or equal to 0, got -0.1"),
        ("preset", "best", "adapter 'lora': preset: input should be 'reference' or 'paper-best', got 'best'"),
        (
            "use_dora",
            "maybe",
            "adapter 'lora': use_dora: input should be a valid boolean, unable to interpret input, got 'maybe'",
        ),
        (
            "target_modules",
            [],
            "adapter 'lora': target_modules: must name at least one target, or be left out to use the preset, got []",
        ),
        ("rank", 8, "adapter 'lora': unknown field 'rank'"),
    ],
)
def test_invalid_values_name_adapter_field_and_value(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"type": "lora", field: value})
    assert str(info.value) == message


def test_assignment_is_validated_too() -> None:
    cfg = LoRAConfig()
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        cfg.r = 0


def test_cli_style_options_parse() -> None:
    cfg = parse_config({"type": "lora", "r": "16", "alpha": "32", "use_dora": "true", "dropout": "0"})
    assert (cfg.r, cfg.alpha, cfg.use_dora, cfg.dropout) == (16, 32.0, True, 0.0)
