"""The injection engine against hand-written computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.engine.wrapper import AdaptedModule
from llm_adapters.errors import AdapterStateError, ConfigError, FamilyError, TargetError
from llm_adapters.testing import tiny_model_from_config

from .probe_plugin import TINY_GPT2, TINY_LLAMA


def llama(seed: int = 0) -> nn.Module:
    return tiny_model_from_config(TINY_LLAMA, seed=seed)


def ids() -> torch.Tensor:
    return torch.randint(3, 120, (2, 6), generator=torch.Generator().manual_seed(0))


def randomize(model: nn.Module, name: str = "default", seed: int = 3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, name).items()):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))


def layer(model: nn.Module, path: str, name: str, slot: str):  # type: ignore[no-untyped-def]
    return model.get_submodule(path).adapters[name][slot]


def test_targets_default_to_the_types_roles_and_base_is_frozen() -> None:
    model = llama()
    la.attach(model, {"type": "probe"})
    wrapped = sorted(n for n, m in model.named_modules() if isinstance(m, AdaptedModule))
    assert wrapped == [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    assert all(not p.requires_grad for n, p in model.named_parameters() if ".adapters." not in n)
    trainable, total = la.trainable_parameters(model)
    # probe rank 2 on q (32->32) and v (32->16: 2 kv heads * 8): (2*32 + 32*2) + (2*32 + 16*2) per layer
    assert trainable == 2 * ((2 * 32 + 32 * 2) + (2 * 32 + 16 * 2))
    assert total == sum(p.numel() for p in llama().parameters()) + trainable


@pytest.mark.parametrize(
    "targets",
    [["attn.q"], ["q_proj"], ["self_attn.q_proj"], r"model\.layers\.\d+\.self_attn\.q_proj"],
)
def test_roles_suffixes_and_regex_resolve_to_the_same_modules(targets) -> None:  # type: ignore[no-untyped-def]
    model = llama()
    la.attach(model, {"type": "probe", "target_modules": targets})
    assert [s.module_path for s in la.engine.state._state(model).records["default"].sites] == [
        "model.layers.0.self_attn.q_proj",
        "model.layers.1.self_attn.q_proj",
    ]


def test_suffix_matches_whole_path_components_only() -> None:
    model = llama()
    with pytest.raises(TargetError, match="target 'proj' matches no module"):
        la.attach(model, {"type": "probe", "target_modules": ["proj"]})


def test_unmatched_target_lists_closest_names_and_leaves_model_untouched() -> None:
    model = llama()
    keys = list(model.state_dict())
    with pytest.raises(TargetError) as exc:
        la.attach(model, {"type": "probe", "target_modules": ["q_proj", "v_prj"]})
    assert str(exc.value).startswith(
        "adapter 'probe': target 'v_prj' matches no module of LlamaForCausalLM; closest module names: v_proj,"
    )
    assert list(model.state_dict()) == keys and la.list_adapters(model) == []
    assert all(p.requires_grad for p in model.parameters())


def test_bad_regex_and_unmatched_regex() -> None:
    with pytest.raises(TargetError, match="regex '\\(' is invalid"):
        la.attach(llama(), {"type": "probe", "target_modules": "("})
    with pytest.raises(TargetError, match="the regex 'q_proj' matches no module path"):
        la.attach(llama(), {"type": "probe", "target_modules": "q_proj"})


def test_role_without_family_explains_the_two_ways_forward() -> None:
    model = tiny_model_from_config(
        {
            "model_type": "opt",
            "vocab_size": 64,
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "ffn_dim": 32,
            "num_attention_heads": 2,
            "word_embed_proj_dim": 16,
        }
    )
    with pytest.raises(FamilyError) as exc:
        la.attach(model, {"type": "probe"})
    msg = str(exc.value)
    assert msg.startswith("no installed model family covers model_type 'opt' (installed families: test-gpt2 (gpt2)")
    assert "explicit module names in target_modules" in msg and "CONTRIBUTING.md" in msg
    la.attach(model, {"type": "probe", "target_modules": ["q_proj"]})  # explicit names work without a family


def test_composition_order_pre_parallel_post_matches_hand_computation() -> None:
    model = llama()
    path = "model.layers.0.mlp.down_proj"
    la.attach(model, {"type": "probe", "kind": "pre", "target_modules": [path]}, name="a")
    la.attach(model, {"type": "probe", "kind": "parallel", "target_modules": [path]}, name="b")
    la.attach(model, {"type": "probe", "kind": "post", "target_modules": [path]}, name="c")
    la.attach(model, {"type": "probe", "kind": "post", "target_modules": [path]}, name="d")
    for i, n in enumerate("abcd"):
        randomize(model, n, seed=i)
    wrapper = model.get_submodule(path)
    W = wrapper.base.weight.detach()
    x = torch.randn(3, W.shape[1])

    def f(n: str, slot: str, h: torch.Tensor) -> torch.Tensor:
        lay = layer(model, path, n, slot)
        return h @ lay.down.detach().t() @ lay.up.detach().t()

    x1 = x + f("a", "pre", x)
    y = x1 @ W.t() + f("b", "parallel", x1)
    y = y + f("c", "post", y)
    y = y + f("d", "post", y)
    torch.testing.assert_close(wrapper(x), y)
    la.set_active(model, ["b", "d"])  # subsets keep their order
    y2 = x @ W.t() + f("b", "parallel", x)
    torch.testing.assert_close(wrapper(x), y2 + f("d", "post", y2))
    assert [(a.name, a.active) for a in la.list_adapters(model)] == [
        ("a", False),
        ("b", True),
        ("c", False),
        ("d", True),
    ]


def test_fused_part_on_gpt2_conv1d_matches_sliced_weights() -> None:
    model = tiny_model_from_config(TINY_GPT2)
    la.attach(model, {"type": "probe", "target_modules": ["attn.v"]})
    randomize(model)
    wrapper = model.get_submodule("transformer.h.0.attn.c_attn")
    W, b = wrapper.base.weight.detach(), wrapper.base.bias.detach()  # Conv1D: (in, out)
    lay = layer(model, "transformer.h.0.attn.c_attn", "default", "parallel_v")
    x = torch.randn(2, 4, 32)
    expected = x @ W + b
    expected[..., 64:96] += x @ lay.down.detach().t() @ lay.up.detach().t()  # v is the last third
    torch.testing.assert_close(wrapper(x), expected)
    la.merge(model)
    torch.testing.assert_close(wrapper(x), expected, atol=1e-5, rtol=1e-5)


def test_merge_unmerge_twice_and_errors() -> None:
    model = llama()
    la.attach(model, {"type": "probe"})
    randomize(model)
    x = ids()
    before = model.model.layers[0].self_attn.q_proj.base.weight.detach().clone()
    out = model(x).logits
    la.merge(model)
    merged_w = model.model.layers[0].self_attn.q_proj.base.weight.detach().clone()
    la.merge(model)
    assert torch.equal(model.model.layers[0].self_attn.q_proj.base.weight, merged_w)  # second merge: no-op
    torch.testing.assert_close(model(x).logits, out, atol=1e-5, rtol=1e-5)
    assert la.list_adapters(model)[0].merged
    la.set_active(model, [])  # deactivating a merged adapter unmerges it, bit for bit
    assert torch.equal(model.model.layers[0].self_attn.q_proj.base.weight, before)
    with pytest.raises(AdapterStateError, match="adapter 'default' is not active"):
        la.merge(model, "default")
    with pytest.raises(AdapterStateError, match="merge: no adapter named 'nope' is attached \\(attached: default\\)"):
        la.merge(model, "nope")


def test_merge_with_unload_leaves_a_plain_model_with_merged_weights() -> None:
    model = llama()
    keys = list(model.state_dict())
    la.attach(model, {"type": "probe"})
    randomize(model)
    out = model(ids()).logits
    la.merge(model, unload=True)
    assert list(model.state_dict()) == keys and la.list_adapters(model) == []
    torch.testing.assert_close(model(ids()).logits, out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["pre", "post"])
def test_pre_and_post_layers_merge_as_linear_maps_of_the_module(kind: str) -> None:
    model = llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    la.attach(model, {"type": "probe", "kind": kind})
    randomize(model)
    out = model(ids()).logits
    la.merge(model)
    torch.testing.assert_close(model(ids()).logits, out, atol=1e-5, rtol=1e-5)
    la.detach(model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # bit for bit


def test_named_adapters_and_detach_one() -> None:
    model = llama()
    ref = model(ids()).logits
    la.attach(model, {"type": "probe"}, name="x")
    la.attach(model, {"type": "probe", "target_modules": ["attn.q"]}, name="y")
    randomize(model, "x"), randomize(model, "y", seed=5)
    with pytest.raises(AdapterStateError, match="an adapter named 'x' is already attached"):
        la.attach(model, {"type": "probe"}, name="x")
    with pytest.raises(AdapterStateError, match="adapter name 'a.b' must start with a letter"):
        la.attach(model, {"type": "probe"}, name="a.b")
    la.set_active(model, ["y"])
    only_y = model(ids()).logits
    la.set_active(model, ["x", "y"])
    la.detach(model, "x")
    torch.testing.assert_close(model(ids()).logits, only_y)
    la.detach(model)
    assert torch.equal(model(ids()).logits, ref)
    with pytest.raises(AdapterStateError, match="LlamaForCausalLM has no adapters attached"):
        la.detach(model)


def test_attach_on_meta_device_allocates_nothing() -> None:
    model = tiny_model_from_config(
        {
            **TINY_LLAMA,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "vocab_size": 32000,
        },
        device="meta",
    )
    la.attach(model, {"type": "probe", "rank": 8})
    trainable, total = la.trainable_parameters(model)
    assert trainable == 32 * 2 * (8 * 4096 + 4096 * 8)
    assert all(p.device.type == "meta" for p in model.parameters())


def test_unknown_type_names_installed_types_and_provider() -> None:
    with pytest.raises(ConfigError) as exc:
        la.attach(llama(), {"type": "lora"})
    assert str(exc.value) == (
        "unknown adapter type 'lora'; installed adapter types: probe. Adapter types come from plugin packages: "
        "`llm-adapters plugins` lists what is installed"
    )
    with pytest.raises(ConfigError, match="unknown adapter type 'zzz'; installed adapter types: probe. Adapter types"):
        la.attach(llama(), {"type": "zzz"})


def test_config_validation_messages() -> None:
    with pytest.raises(ConfigError) as exc:
        la.attach(llama(), {"type": "probe", "rank": 0})
    assert str(exc.value) == "adapter 'probe': rank: input should be greater than or equal to 1, got 0"
    with pytest.raises(ConfigError, match="adapter 'probe': unknown field 'rnak'"):
        la.attach(llama(), {"type": "probe", "rnak": 2})
    with pytest.raises(ConfigError, match="the adapter config has no 'type' key"):
        la.attach(llama(), {"rank": 2})


def test_every_config_field_is_described() -> None:
    from llm_adapters.adapter import AdapterConfig

    for cls in (AdapterConfig, *[t.config_class for t in la.adapter_types().values()]):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"


def test_half_precision_base_keeps_float32_adapter_and_activation_dtype() -> None:
    model = llama().to(torch.bfloat16)
    la.attach(model, {"type": "probe"})
    lay = layer(model, "model.layers.0.self_attn.q_proj", "default", "parallel")
    assert lay.down.dtype == torch.float32
    out = model.model.layers[0].self_attn.q_proj(torch.randn(2, 32, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_number(value: bool) -> None:
    with pytest.raises(ConfigError) as err:
        la.attach(llama(), {"type": "probe", "rank": value})
    assert str(err.value) == f"adapter 'probe': rank: expected a number or text, got the boolean {value!r}"
