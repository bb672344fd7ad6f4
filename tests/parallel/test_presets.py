"""Where parallel adapters go: the two presets, in roles, and explicit targets."""

from __future__ import annotations

import pytest

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import TargetError
from llm_adapters_parallel import PRESETS
from tests.tiny_models import gpt2, llama


def sites(model) -> set[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    """(module path, slot) of every adapted site, read from the adapter's parameter keys."""
    suffix = ".down.weight"  # keys are <module path>.<slot>.down.weight
    return {tuple(k[: -len(suffix)].rsplit(".", 1)) for k in adapter_parameters(model, "default") if k.endswith(suffix)}


def per_layer(*entries: tuple[str, str], prefix: str = "model.layers") -> set[tuple[str, str]]:
    return {(f"{prefix}.{i}.{path}", slot) for i in (0, 1) for path, slot in entries}


def test_presets_are_roles() -> None:
    assert PRESETS == {"reference": ("attn.q", "attn.k", "attn.v"), "paper-best": ("mlp.up", "mlp.down")}


def test_reference_preset_is_the_default() -> None:
    model = la.attach(llama(), {"type": "parallel", "bottleneck_size": 4})
    expected = per_layer(*((f"self_attn.{p}_proj", "parallel") for p in "qkv"))
    assert sites(model) == expected


def test_reference_preset_on_a_fused_projection_uses_its_parts() -> None:
    model = la.attach(gpt2(), {"type": "parallel", "bottleneck_size": 4, "preset": "reference"})
    assert sites(model) == per_layer(*(("attn.c_attn", f"parallel_{p}") for p in "qkv"), prefix="transformer.h")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (llama, per_layer(("mlp.up_proj", "parallel"), ("mlp.down_proj", "parallel"))),
        (gpt2, per_layer(("mlp.c_fc", "parallel"), ("mlp.c_proj", "parallel"), prefix="transformer.h")),
    ],
)
def test_paper_best_preset_is_alongside_the_mlp(make, expected) -> None:  # type: ignore[no-untyped-def]
    model = la.attach(make(), {"type": "parallel", "bottleneck_size": 4, "preset": "paper-best"})
    assert sites(model) == expected


def test_explicit_targets_suffixes_and_regex() -> None:
    model = la.attach(llama(), {"type": "parallel", "bottleneck_size": 4, "target_modules": ["o_proj", "mlp.gate"]})
    assert sites(model) == per_layer(("self_attn.o_proj", "parallel"), ("mlp.gate_proj", "parallel"))
    model = la.attach(
        llama(), {"type": "parallel", "bottleneck_size": 4, "target_modules": r"model\.layers\.0\..*_proj"}
    )
    assert len(sites(model)) == 7  # q, k, v, o, gate, up, down of the first layer


def test_unknown_target_is_named() -> None:
    with pytest.raises(TargetError, match="adapter 'parallel': target 'q_prj' matches no module of LlamaForCausalLM"):
        la.attach(llama(), {"type": "parallel", "target_modules": ["q_prj"]})
