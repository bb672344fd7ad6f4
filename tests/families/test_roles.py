"""Every family on a tiny random model built from its transformers config: the roles resolve to modules of
the right shapes that the forward pass really uses, the attention geometry matches the KV cache, and the
tiny configuration is tiny and deterministic."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from llm_adapters import model_families
from llm_adapters.family import ModelFamily
from llm_adapters.testing import tiny_model
from llm_adapters.testing.models import tiny_model_from_config

from .helpers import EXPECTED_FAMILIES, UNMAPPED, check_modules_are_used, check_roles, fused_cases, geometry

FAMILIES = sorted(EXPECTED_FAMILIES)
FUSED = {"bloom", "gpt_neox", "gpt2", "falcon"}


def _family(name: str) -> ModelFamily:
    return model_families()[name]


def _ids(vocab: int, batch: int = 2, length: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(3, vocab, (batch, length), generator=g)


@pytest.mark.parametrize("name", FAMILIES)
def test_roles_resolve_to_modules_of_the_right_shape(name: str) -> None:
    family = _family(name)
    model = tiny_model(family)
    check_roles(model, family, UNMAPPED[name])
    check_modules_are_used(model, family, _ids(model.config.vocab_size))


@pytest.mark.parametrize("name", FAMILIES)
def test_dims_match_the_kv_cache(name: str) -> None:
    family = _family(name)
    model = tiny_model(family)
    ids = _ids(model.config.vocab_size, batch=3, length=5)
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).past_key_values
    dims = family.dims(model.config)
    assert dims.num_layers == len(cache.layers) == geometry(model.config)["layers"]
    assert dims.hidden_size == geometry(model.config)["hidden"]
    assert dims.num_attention_heads == geometry(model.config)["heads"]
    for layer in cache.layers:
        assert tuple(layer.keys.shape) == (3, dims.num_key_value_heads, 5, dims.head_dim)
        assert tuple(layer.values.shape) == (3, dims.num_key_value_heads, 5, dims.head_dim)


@pytest.mark.parametrize("name", FAMILIES)
def test_tiny_config_is_tiny_and_deterministic(name: str) -> None:
    family = _family(name)
    assert family.tiny_config["model_type"] in family.model_types
    model = tiny_model(family)
    config = model.config
    g = geometry(config)
    assert g["layers"] == 2 and 32 <= g["hidden"] <= 64 and 128 <= config.vocab_size <= 256
    for key, value in config.to_dict().items():
        if ("drop" in key or key.endswith("pdrop")) and isinstance(value, (int, float)):
            assert value == 0, f"{name}: {key} = {value}"
    again = tiny_model(family)
    ids = _ids(config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, again(input_ids=ids).logits, atol=0, rtol=0)


def test_llama_tiny_config_uses_grouped_query_attention() -> None:
    dims = _family("llama").dims(tiny_model("llama").config)
    assert dims.num_key_value_heads < dims.num_attention_heads
    assert dims.num_attention_heads == 3 * dims.num_key_value_heads  # SmolLM2's ratio (9 heads, 3 kv heads)


# ---- every model type of the LLaMA-style family ---------------------------------------------------
def _llama_style_config(model_type: str) -> dict[str, Any]:
    config = dict(_family("llama").tiny_config, model_type=model_type)
    config.update(head_dim=8, pad_token_id=0)  # Gemma / Helium default to a large head_dim; SmolLM3 to a large pad id
    return config


@pytest.mark.parametrize("model_type", EXPECTED_FAMILIES["llama"])
def test_every_llama_style_model_type_has_the_layout(model_type: str) -> None:
    family = _family("llama")
    model = tiny_model_from_config(_llama_style_config(model_type))
    assert model.config.model_type == model_type
    check_roles(model, family, UNMAPPED["llama"])
    check_modules_are_used(model, family, _ids(model.config.vocab_size))
    dims = family.dims(model.config)
    assert (dims.num_attention_heads, dims.num_key_value_heads, dims.head_dim) == (6, 2, 8)


def test_fused_families_are_the_ones_with_a_fused_projection() -> None:
    assert {n for n, f in model_families().items() if "attn.qkv" in f.fused} == FUSED


@pytest.mark.parametrize("variant", ["falcon-grouped", "falcon-multi-query", "falcon-per-head"])
def test_falcon_variants_resolve_and_match_the_kv_cache(variant: str) -> None:
    family = _family("falcon")
    model = tiny_model_from_config(fused_cases()[variant])
    check_roles(model, family, UNMAPPED["falcon"])
    with torch.no_grad():
        cache = model(input_ids=_ids(model.config.vocab_size, batch=2, length=4), use_cache=True).past_key_values
    dims = family.dims(model.config)
    expected_kv = 1 if variant == "falcon-multi-query" else 4  # Falcon-40B broadcasts its 2 kv heads to all 4
    assert dims.num_key_value_heads == expected_kv
    for layer in cache.layers:
        assert tuple(layer.keys.shape) == (2, expected_kv, 4, dims.head_dim)
