"""Validation of parallel configs: what is accepted, and messages naming the adapter, the field and the value."""

from __future__ import annotations

import pytest
from transformers.activations import ACT2FN

from llm_adapters.config import parse_config
from llm_adapters.errors import ConfigError
from llm_adapters_parallel import ParallelConfig


def parse(**fields):  # type: ignore[no-untyped-def]
    return parse_config({"type": "parallel", **fields})


def test_defaults_are_the_reference_systems() -> None:
    cfg = parse()
    assert (cfg.bottleneck_size, cfg.non_linearity, cfg.dropout, cfg.scaling, cfg.init, cfg.preset) == (
        256,
        "tanh",
        0.0,
        1.0,
        "bert",
        "reference",
    )
    assert cfg.targets() == ["attn.q", "attn.k", "attn.v"]
    assert parse(preset="paper-best").targets() == ["mlp.up", "mlp.down"]


def test_every_field_is_described() -> None:
    assert all(f.description for f in ParallelConfig.model_fields.values())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bottleneck_size": 0}, "bottleneck_size: input should be greater than or equal to 1, got 0"),
        ({"bottleneck_size": 2.5}, "bottleneck_size: input should be a valid integer, got a number with a fractional"),
        ({"dropout": 1}, "dropout: input should be less than 1, got 1"),
        ({"dropout": -0.5}, "dropout: input should be greater than or equal to 0, got -0.5"),
        ({"scaling": "lots"}, "scaling: must be a positive number or 'learned', got 'lots'"),
        ({"scaling": -1}, "scaling: must be a positive number or 'learned', got -1"),
        ({"scaling": float("inf")}, "scaling: must be a positive number or 'learned', got inf"),
        ({"init": "normal"}, "init: input should be 'bert' or 'identity', got 'normal'"),
        ({"preset": "best"}, "preset: input should be 'reference' or 'paper-best', got 'best'"),
        ({"target_modules": ""}, "target_modules: the regex must not be empty, got ''"),
        (
            {"preset": "paper-best", "target_modules": ["q_proj"]},
            "preset: only chooses the default targets and would be ignored next to target_modules; leave one of "
            "them out, got 'paper-best'",
        ),
        ({"use_parallel_adapter": True}, "unknown field 'use_parallel_adapter'"),
    ],
)
def test_invalid_values_are_named(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(**fields)
    assert str(exc.value).startswith("adapter 'parallel': ")
    assert message in str(exc.value)


def test_unknown_activation_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        parse(non_linearity="swishy")
    text = str(exc.value)
    assert text.startswith("adapter 'parallel': non_linearity: not an activation transformers knows; choose one of ")
    assert text.endswith(", got 'swishy'") and all(name in text for name in ACT2FN)


@pytest.mark.parametrize(("given", "scaling"), [(4, 4.0), (0.25, 0.25), ("Learned", "learned")])
def test_scaling_accepts_integers_numbers_and_learned(given: object, scaling: object) -> None:
    assert parse(scaling=given).scaling == scaling


def test_mam_adapter_is_the_identity_start() -> None:
    assert parse(init="mam_adapter").init == "identity"


@pytest.mark.parametrize(
    "fields", [{}, {"preset": "paper-best"}, {"target_modules": ["q_proj"]}, {"target_modules": ".*q"}]
)
def test_a_dumped_config_parses_back_to_itself(fields: dict) -> None:
    cfg = parse(**fields, scaling="learned")
    dumped = cfg.model_dump(mode="json")
    assert parse_config(dumped) == cfg
    assert ("preset" in dumped) == (cfg.target_modules is None)
