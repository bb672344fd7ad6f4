"""Validation of series configs: what is accepted, and messages naming the adapter, the field and the value."""

from __future__ import annotations

import pytest
from transformers.activations import ACT2FN

from llm_adapters.config import parse_config, parse_option
from llm_adapters.errors import ConfigError
from llm_adapters_series import SeriesConfig


def parse(**fields):  # type: ignore[no-untyped-def]
    return parse_config({"type": "series", **fields})


def test_defaults_are_the_reference_systems() -> None:
    cfg = parse()
    assert (cfg.bottleneck_size, cfg.non_linearity, cfg.dropout, cfg.scaling, cfg.init, cfg.variant) == (
        256,
        "tanh",
        0.0,
        1.0,
        "bert",
        "adapterh",
    )
    assert cfg.target_modules is None and cfg.placement is None


def test_every_field_is_described() -> None:
    assert all(f.description for f in SeriesConfig.model_fields.values())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bottleneck_size": 0}, "bottleneck_size: input should be greater than or equal to 1, got 0"),
        ({"dropout": 1.0}, "dropout: input should be less than 1, got 1.0"),
        ({"dropout": -0.1}, "dropout: input should be greater than or equal to 0, got -0.1"),
        ({"scaling": "big"}, "scaling: must be a positive number or 'learned', got 'big'"),
        ({"scaling": 0}, "scaling: must be a positive number or 'learned', got 0"),
        ({"scaling": True}, "scaling: expected a number or text, got the boolean True"),
        ({"scaling": float("nan")}, "scaling: must be a positive number or 'learned', got nan"),
        ({"init": "xavier"}, "init: input should be 'bert' or 'identity', got 'xavier'"),
        ({"variant": "adapterx"}, "variant: input should be 'adapterh' or 'adapterp', got 'adapterx'"),
        ({"target_modules": []}, "target_modules: must name at least one target, or be left out, got []"),
        ({"placement": ["o_proj"]}, "placement: entry 'o_proj' must look like '<target>:<kind>'"),
        (
            {"placement": ["attn.o:parallel"]},
            "placement: entry 'attn.o:parallel': the kind must be 'pre' or 'post'; a parallel adapter is the "
            "adapter type 'parallel', got ['attn.o:parallel']",
        ),
        (
            {"placement": ["attn.o:post"], "target_modules": ["o_proj"]},
            "placement: give either placement (explicit kinds) or target_modules (kinds derived from roles), not both",
        ),
        (
            {"variant": "adapterp", "target_modules": ["down_proj"]},
            "variant: only chooses the default placement and would be ignored next to target_modules or placement; "
            "leave one of them out, got 'adapterp'",
        ),
        ({"use_adapterp": True}, "unknown field 'use_adapterp'"),
    ],
)
def test_invalid_values_are_named(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(**fields)
    assert str(exc.value).startswith("adapter 'series': ")
    assert message in str(exc.value)


def test_unknown_activation_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        parse(non_linearity="tanhh")
    text = str(exc.value)
    assert text.startswith("adapter 'series': non_linearity: not an activation transformers knows; choose one of ")
    assert text.endswith(", got 'tanhh'") and all(name in text for name in ACT2FN)


@pytest.mark.parametrize(("given", "scaling"), [(2, 2.0), (0.5, 0.5), ("2", 2.0), ("learned", "learned")])
def test_scaling_accepts_integers_numbers_and_learned(given: object, scaling: object) -> None:
    assert parse(scaling=given).scaling == scaling


@pytest.mark.parametrize("name", ["relu", "gelu_new", "silu", "SiLU", "sigmoid"])
def test_any_transformers_activation(name: str) -> None:
    assert parse(non_linearity=name).non_linearity == name.lower()


def test_mam_adapter_is_the_identity_start() -> None:
    assert parse(init="mam_adapter").init == "identity"


def test_placement_entries_are_normalised() -> None:
    assert parse(placement=[" attn.o : post", "up_proj:pre"]).placement == ["attn.o:post", "up_proj:pre"]


def test_placement_from_a_command_line_option() -> None:
    key, value = parse_option("placement=attn.o:post,mlp.down:post")
    assert parse(**{key: value}).placement == ["attn.o:post", "mlp.down:post"]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"variant": "adapterp"},
        {"target_modules": ["o_proj"]},
        {"target_modules": ".*o_proj"},
        {"placement": ["attn.o:post"]},
    ],
)
def test_a_dumped_config_parses_back_to_itself(fields: dict) -> None:
    cfg = parse(**fields, scaling=2)
    dumped = cfg.model_dump(mode="json")
    assert parse_config(dumped) == cfg
    assert ("variant" in dumped) == cfg.uses_variant
