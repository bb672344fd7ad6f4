"""Where series adapters go: variants in roles, kinds derived from roles, explicit placements."""

from __future__ import annotations

import pytest

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterStateError, ConfigError, FamilyError, TargetError
from llm_adapters.testing import use_plugins
from llm_adapters_series import plugin as series_plugin
from tests.tiny_models import gpt2, llama


def sites(model, name: str = "default") -> set[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    """(module path, kind) of every adapted site, read from the adapter's parameter keys."""
    suffix = ".down.weight"  # keys are <module path>.<kind>.down.weight
    return {tuple(k[: -len(suffix)].rsplit(".", 1)) for k in adapter_parameters(model, name) if k.endswith(suffix)}


def per_layer(*entries: tuple[str, str], prefix: str = "model.layers") -> set[tuple[str, str]]:
    return {(f"{prefix}.{i}.{path}", kind) for i in (0, 1) for path, kind in entries}


def test_adapterh_on_a_gated_mlp() -> None:
    model = la.attach(llama(), {"type": "series", "bottleneck_size": 4})  # variant adapterh is the default
    assert sites(model) == per_layer(("mlp.gate_proj", "pre"), ("mlp.up_proj", "pre"), ("mlp.down_proj", "post"))


def test_adapterh_without_a_gate() -> None:
    model = la.attach(gpt2(), {"type": "series", "bottleneck_size": 4, "variant": "adapterh"})
    assert sites(model) == per_layer(("mlp.c_fc", "pre"), ("mlp.c_proj", "post"), prefix="transformer.h")


@pytest.mark.parametrize(
    ("make", "down"), [(llama, "model.layers.{}.mlp.down_proj"), (gpt2, "transformer.h.{}.mlp.c_proj")]
)
def test_adapterp_after_the_mlp_only(make, down) -> None:  # type: ignore[no-untyped-def]
    model = la.attach(make(), {"type": "series", "bottleneck_size": 4, "variant": "adapterp"})
    assert sites(model) == {(down.format(i), "post") for i in (0, 1)}


def test_target_modules_as_suffixes_take_their_kind_from_the_role() -> None:
    """The reference's own list (gate_proj, up_proj, down_proj) means AdapterH: pre, pre, post."""
    model = la.attach(
        llama(), {"type": "series", "bottleneck_size": 4, "target_modules": ["gate_proj", "up_proj", "down_proj"]}
    )
    assert sites(model) == per_layer(("mlp.gate_proj", "pre"), ("mlp.up_proj", "pre"), ("mlp.down_proj", "post"))


def test_target_modules_as_roles_and_as_a_regex() -> None:
    model = la.attach(llama(), {"type": "series", "bottleneck_size": 4, "target_modules": ["mlp.up", "attn.o"]})
    assert sites(model) == per_layer(("mlp.up_proj", "pre"), ("self_attn.o_proj", "post"))
    model = la.attach(
        llama(), {"type": "series", "bottleneck_size": 4, "target_modules": r"model\.layers\.1\.mlp\.(up|down)_proj"}
    )
    assert sites(model) == {("model.layers.1.mlp.up_proj", "pre"), ("model.layers.1.mlp.down_proj", "post")}


def test_explicit_placement_overrides_the_derived_kind() -> None:
    model = la.attach(llama(), {"type": "series", "bottleneck_size": 4, "placement": ["up_proj:post", "mlp.down:pre"]})
    assert sites(model) == per_layer(("mlp.up_proj", "post"), ("mlp.down_proj", "pre"))


def test_without_a_family_suffixes_work_and_kinds_default_to_post() -> None:
    with use_plugins(series_plugin):  # no model family installed
        model = la.attach(llama(), {"type": "series", "bottleneck_size": 4, "target_modules": ["up_proj"]})
        assert sites(model) == per_layer(("mlp.up_proj", "post"))
        model = la.attach(llama(), {"type": "series", "bottleneck_size": 4, "placement": ["up_proj:pre"]})
        assert sites(model) == per_layer(("mlp.up_proj", "pre"))
        with pytest.raises(FamilyError, match="no installed model family covers model_type 'llama'"):
            la.attach(llama(), {"type": "series", "bottleneck_size": 4})


def test_placement_errors_name_the_target() -> None:
    with pytest.raises(TargetError, match="adapter 'series': target 'q_prj' matches no module of LlamaForCausalLM"):
        la.attach(llama(), {"type": "series", "placement": ["q_prj:post"]})
    with pytest.raises(TargetError, match="adapter 'series': model family 'gpt2' has no role 'mlp.gate'"):
        la.attach(gpt2(), {"type": "series", "placement": ["mlp.gate:pre"]})
    with pytest.raises(ConfigError, match="adapter 'series': placement: give either placement"):
        la.attach(llama(), {"type": "series", "placement": ["o_proj:post"], "target_modules": ["o_proj"]})


def test_a_failed_attach_leaves_the_model_as_it_was() -> None:
    model = llama()
    keys = list(model.state_dict())
    with pytest.raises(TargetError):
        la.attach(model, {"type": "series", "placement": ["up_proj:pre", "nothing_here:post"]})
    assert list(model.state_dict()) == keys and la.list_adapters(model) == []


def test_series_cannot_be_merged() -> None:
    model = la.attach(llama(), {"type": "series", "bottleneck_size": 4})
    with pytest.raises(AdapterStateError, match="adapter 'default' \\(series\\) cannot be merged"):
        la.merge(model)
