"""Placements whose kind depends on the role a module plays, optional placements, and ModelFamily.role_of."""

from __future__ import annotations

import pytest

from llm_adapters import Placement
from llm_adapters.engine.targets import resolve_targets
from llm_adapters.errors import TargetError
from llm_adapters.testing import tiny_model_from_config

from .probe_plugin import GPT2, LLAMA, TINY_GPT2, TINY_LLAMA

PRE_ON_INPUTS = (("mlp.gate", "pre"), ("mlp.up", "pre"))


def test_role_of_reverses_the_role_table() -> None:
    assert LLAMA.role_of("model.layers.1.mlp.up_proj") == "mlp.up"
    assert LLAMA.role_of("model.layers.0.self_attn.o_proj") == "attn.o"
    assert LLAMA.role_of("model.layers.0") == "block"
    assert LLAMA.role_of("model.layers.0.mlp") is None
    assert LLAMA.role_of("lm_head") is None
    assert LLAMA.role_of("model.layers.x.mlp.up_proj") is None
    assert GPT2.role_of("transformer.h.1.mlp.c_proj") == "mlp.down"
    assert GPT2.role_of("transformer.h.1.attn.c_proj") == "attn.o"


def test_kind_by_role_applies_to_roles_suffixes_and_regexes() -> None:
    model = tiny_model_from_config(TINY_LLAMA)
    placements = [
        Placement("mlp.up", "post", kind_by_role=PRE_ON_INPUTS),
        Placement("gate_proj", "post", kind_by_role=PRE_ON_INPUTS),
        Placement(r"model\.layers\.0\.mlp\.down_proj", "post", regex=True, kind_by_role=PRE_ON_INPUTS),
    ]
    sites = resolve_targets(model, placements, LLAMA, adapter="probe")
    got = [(s.module_path, s.kind, s.role) for s in sites]
    assert got == [
        ("model.layers.0.mlp.up_proj", "pre", "mlp.up"),
        ("model.layers.1.mlp.up_proj", "pre", "mlp.up"),
        ("model.layers.0.mlp.gate_proj", "pre", "mlp.gate"),
        ("model.layers.1.mlp.gate_proj", "pre", "mlp.gate"),
        ("model.layers.0.mlp.down_proj", "post", "mlp.down"),
    ]


def test_without_a_family_suffix_hits_take_the_plain_kind() -> None:
    model = tiny_model_from_config(TINY_LLAMA)
    sites = resolve_targets(model, [Placement("up_proj", "post", kind_by_role=PRE_ON_INPUTS)], None, adapter="probe")
    assert {(s.kind, s.role) for s in sites} == {("post", None)}


def test_optional_placements_are_skipped_where_nothing_fits() -> None:
    model = tiny_model_from_config(TINY_GPT2)
    placements = [
        Placement("mlp.gate", "pre", optional=True),  # GPT-2 has no gated MLP
        Placement("gate_proj", "pre", optional=True),
        Placement(r".*\.nothing", "pre", regex=True, optional=True),
        Placement("mlp.down", "post"),
    ]
    sites = resolve_targets(model, placements, GPT2, adapter="probe")
    assert [s.module_path for s in sites] == ["transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"]
    with pytest.raises(TargetError, match="model family 'test-gpt2' has no role 'mlp.gate'"):
        resolve_targets(model, [Placement("mlp.gate", "pre")], GPT2, adapter="probe")


def test_a_suffix_shaped_like_a_role_matches_modules_and_a_misspelt_role_still_says_so() -> None:
    model = tiny_model_from_config(TINY_GPT2)
    sites = resolve_targets(model, [Placement("mlp.c_proj", "post")], GPT2, adapter="probe")
    assert [(s.module_path, s.role) for s in sites] == [
        ("transformer.h.0.mlp.c_proj", "mlp.down"),
        ("transformer.h.1.mlp.c_proj", "mlp.down"),
    ]
    with pytest.raises(TargetError, match="model family 'test-gpt2' has no role 'mlp.dwn'"):
        resolve_targets(model, [Placement("mlp.dwn", "post")], GPT2, adapter="probe")
