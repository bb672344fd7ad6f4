"""``la.combine`` for LoRA: each method against its definition computed by hand, every refusal, save and load."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Literal

import pytest
import torch
from pydantic import Field
from torch import nn

import llm_adapters as la
from llm_adapters import AdapterConfig, AdapterLayer, AdapterType, Site, hookimpl
from llm_adapters.engine.state import _state, _wrapper
from llm_adapters.errors import AdapterStateError
from llm_adapters.testing import tiny_model_from_config, use_plugins
from llm_adapters_lora import plugin

from . import families
from .helpers import logits, randomise, token_ids

Q0 = "model.layers.0.self_attn.q_proj"


def _model(config: dict = families.TINY_LLAMA) -> nn.Module:
    return tiny_model_from_config(config, seed=0)


def _attach(model: nn.Module, name: str, seed: int, **cfg) -> None:
    la.attach(model, {"type": "lora", "dropout": 0.0, **cfg}, name=name)
    randomise(model, name, seed=seed, std=0.2)


def _deltas(model: nn.Module, name: str) -> dict[tuple[str, str | None], torch.Tensor]:
    out = {}
    for site in _state(model).records[name].sites:
        layer = _wrapper(model, site.module_path, create=False).adapters[name][site.slot]
        out[(site.module_path, site.part)] = layer.delta_weight().detach().double()
    return out


def _layer(model: nn.Module, name: str, path: str, part: str | None = None) -> nn.Module:
    site = next(s for s in _state(model).records[name].sites if (s.module_path, s.part) == (path, part))
    return _wrapper(model, path, create=False).adapters[name][site.slot]


def _weighted(model: nn.Module, names: list[str], weights: list[float]) -> dict:
    out: dict = {}
    for n, w in zip(names, weights, strict=True):
        for key, d in _deltas(model, n).items():
            out[key] = out.get(key, torch.zeros_like(d)) + w * d
    return out


@pytest.fixture
def two() -> nn.Module:
    """A LLaMA model with 'a' (r=4, alpha=8 on q, v) and 'b' (r=2, rsLoRA, on q and mlp.down)."""
    model = _model()
    _attach(model, "a", 1, r=4, alpha=8, target_modules=["attn.q", "attn.v"])
    _attach(model, "b", 2, r=2, alpha=6, use_rslora=True, target_modules=["attn.q", "mlp.down"])
    return model


# ---- cat --------------------------------------------------------------------------------------------
def test_cat_is_exactly_the_weighted_sum_of_the_deltas(two: nn.Module) -> None:
    weights = [0.7, -0.4]
    expected = _weighted(two, ["a", "b"], weights)
    la.combine(two, ["a", "b"], weights, "ab")
    cfg = la.engine.adapter_config(two, "ab")
    assert (cfg.r, cfg.alpha, cfg.use_rslora, cfg.scale) == (6, 6.0, False, 1.0)
    assert _state(two).active == ["a", "b", "ab"]  # active alongside the others, like attach
    got = _deltas(two, "ab")
    assert set(got) == set(expected) and len(got) == 6  # the union: q, v and down on 2 blocks
    for key, d in expected.items():
        torch.testing.assert_close(got[key], d, atol=1e-6, rtol=0)

    # logits: only 'ab' active vs a plain model whose weights carry W + sum w_i delta_i
    la.set_active(two, "ab")
    ids = token_ids()
    hand = _model()
    with torch.no_grad():
        for (path, _), d in expected.items():
            hand.get_submodule(path).weight.add_(d.float())
    torch.testing.assert_close(logits(two, ids), logits(hand, ids), atol=1e-5, rtol=0)


def test_cat_on_parts_of_fused_projections() -> None:
    model = _model(families.TINY_GPT2)
    _attach(model, "a", 1, r=2, alpha=4, target_modules=["attn.q", "attn.v"])
    _attach(model, "b", 2, r=3, alpha=3, target_modules=["attn.k", "mlp.up"])
    expected = _weighted(model, ["a", "b"], [1.5, 0.5])
    la.combine(model, ["a", "b"], [1.5, 0.5], "ab")
    assert sorted(la.engine.adapter_config(model, "ab").target_modules) == sorted(
        ["transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc", "attn.q", "attn.v", "attn.k"]
    )
    got = _deltas(model, "ab")
    assert set(got) == set(expected)
    for key, d in expected.items():
        torch.testing.assert_close(got[key], d, atol=1e-6, rtol=0)


# ---- linear -----------------------------------------------------------------------------------------
def test_linear_follows_peft_definition() -> None:
    model = _model()
    _attach(model, "a", 1, r=4, alpha=8)
    _attach(model, "b", 2, r=4, alpha=2, use_rslora=True)
    weights = [0.6, 1.3]
    la.combine(model, ["a", "b"], weights, "ab", method="linear")
    assert la.engine.adapter_config(model, "ab").r == 4
    for site in _state(model).records["ab"].sites:
        la_, lb = _layer(model, "a", site.module_path), _layer(model, "b", site.module_path)
        ca, cb = math.sqrt(0.6 * 8 / 4), math.sqrt(1.3 * 2 / 2)
        new = _layer(model, "ab", site.module_path)
        torch.testing.assert_close(new.lora_A, ca * la_.lora_A + cb * lb.lora_A, atol=1e-6, rtol=0)
        torch.testing.assert_close(new.lora_B, ca * la_.lora_B + cb * lb.lora_B, atol=1e-6, rtol=0)
        assert new.scale == 1.0


# ---- svd --------------------------------------------------------------------------------------------
def test_svd_at_full_rank_equals_cat(two: nn.Module) -> None:
    weights = [0.7, -0.4]
    la.combine(two, ["a", "b"], weights, "cat")
    la.combine(two, ["a", "b"], weights, "svd", method="svd", rank=6)
    cat, svd = _deltas(two, "cat"), _deltas(two, "svd")
    assert set(cat) == set(svd)
    for key in cat:
        torch.testing.assert_close(svd[key], cat[key], atol=1e-5, rtol=0)


def test_svd_at_low_rank_is_the_best_rank_k_approximation(two: nn.Module) -> None:
    weights = [0.7, -0.4]
    expected = _weighted(two, ["a", "b"], weights)
    la.combine(two, ["a", "b"], weights, "low", method="svd")  # default rank: max r_i = 4
    assert la.engine.adapter_config(two, "low").r == 4
    la.combine(two, ["a", "b"], weights, "two", method="svd", rank=2)
    for name, k in (("low", 4), ("two", 2)):
        got = _deltas(two, name)
        for key, m in expected.items():
            u, s, vh = torch.linalg.svd(m)
            best = u[:, :k] @ torch.diag(s[:k]) @ vh[:k]
            torch.testing.assert_close(got[key], best, atol=1e-5, rtol=0)


# ---- ties / dare against a reference written here ----------------------------------------------------
def _ref_trim(t: torch.Tensor, density: float) -> torch.Tensor:
    k = int(density * t.numel())
    if k == 0:
        return torch.zeros_like(t)
    threshold = t.abs().flatten().sort(descending=True).values[k - 1]
    return torch.where(t.abs() >= threshold, t, torch.zeros_like(t))


def _ref_ties_merge(tensors: list[torch.Tensor]) -> torch.Tensor:
    out = torch.zeros_like(tensors[0])
    rows, cols = out.shape
    for i in range(rows):
        for j in range(cols):
            values = [float(t[i, j]) for t in tensors]
            sign = 1.0 if sum(values) >= 0 else -1.0
            agreeing = [v for v in values if v != 0 and math.copysign(1.0, v) == sign]
            out[i, j] = sum(agreeing) / len(agreeing) if agreeing else 0.0
    return out


def _ref(method: str, deltas: list[torch.Tensor], weights: list[float], density: float, seed: int) -> torch.Tensor:
    if method.startswith("dare"):
        g = torch.Generator().manual_seed(seed)
        deltas = [d * (torch.rand(d.shape, generator=g, dtype=torch.float64) < density) / density for d in deltas]
    weighted = [w * d for w, d in zip(weights, deltas, strict=True)]
    if method == "dare_linear":
        return sum(weighted)
    if method == "ties":
        weighted = [_ref_trim(t, density) for t in weighted]
    return _ref_ties_merge(weighted)


@pytest.mark.parametrize("method", ["ties", "dare_linear", "dare_ties"])
def test_ties_and_dare_match_a_reference_on_one_module(method: str) -> None:
    model = _model()
    _attach(model, "a", 1, r=4, alpha=8, target_modules=[Q0])
    _attach(model, "b", 2, r=4, alpha=4, target_modules=[Q0])
    _attach(model, "c", 3, r=2, alpha=2, target_modules=[Q0])
    names, weights, density, seed = ["a", "b", "c"], [0.5, 1.0, -0.8], 0.3, 7
    deltas = [_deltas(model, n)[(Q0, None)] for n in names]
    expected = _ref(method, deltas, weights, density, seed)
    la.combine(model, names, weights, "full", method=method, density=density, rank=32, seed=seed)
    torch.testing.assert_close(_deltas(model, "full")[(Q0, None)], expected, atol=1e-5, rtol=0)
    la.combine(model, names, weights, "low", method=method, density=density, seed=seed)  # rank 4
    u, s, vh = torch.linalg.svd(expected)
    torch.testing.assert_close(_deltas(model, "low")[(Q0, None)], u[:, :4] * s[:4] @ vh[:4], atol=1e-5, rtol=0)
    # another seed draws other masks
    if method.startswith("dare"):
        la.combine(model, names, weights, "other", method=method, density=density, rank=32, seed=seed + 1)
        assert not torch.allclose(_deltas(model, "other")[(Q0, None)], expected)


# ---- refusals ---------------------------------------------------------------------------------------
class OtherConfig(AdapterConfig):
    type: Literal["other"] = Field("other", description="The adapter type.")


class _Zero(AdapterLayer):
    def __init__(self, d_out: int) -> None:
        super().__init__()
        self.d_out = d_out
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        return x.new_zeros(*x.shape[:-1], self.d_out) * self.gain


class Other(AdapterType):
    name = "other"
    config_class = OtherConfig
    default_targets = ("attn.q",)

    def create_layer(self, config: AdapterConfig, site: Site) -> AdapterLayer:
        return _Zero(site.features("parallel")[1])


class OtherPlugin:
    @hookimpl
    def register_adapters(self, register: Callable[[type], None]) -> None:
        register(Other)


@pytest.fixture
def with_other() -> Iterator[None]:
    with use_plugins(plugin, families, OtherPlugin()):
        yield


def _refused(model: nn.Module, message: str, *args, **kwargs) -> None:
    before = list(_state(model).records)
    with pytest.raises(AdapterStateError) as info:
        la.combine(model, *args, **kwargs)
    assert str(info.value) == message
    assert list(_state(model).records) == before  # nothing attached


def test_refuses_a_type_without_combine_and_mixed_types(with_other: None) -> None:
    model = _model()
    la.attach(model, {"type": "other"}, name="x")
    la.attach(model, {"type": "other"}, name="y")
    _attach(model, "a", 1)
    _refused(model, "adapter type 'other' does not support combining", ["x", "y"], [1.0, 1.0], "xy")
    _refused(
        model, "combine: the adapters must be of one type ('a' is 'lora', 'x' is 'other')", ["a", "x"], [1, 1], "ax"
    )


def test_refuses_dora() -> None:
    model = _model()
    _attach(model, "a", 1)
    _attach(model, "d", 2, use_dora=True)
    _refused(
        model,
        "cannot combine DoRA adapter(s) 'd': a DoRA layer changes the weight by m (W + s B A) / ||W + s B A||_c - W, "
        "which depends on the base weight and is not low-rank, so no weighted combination of such changes is a LoRA "
        "or DoRA adapter",
        ["a", "d"],
        [1.0, 1.0],
        "ad",
    )


def test_refuses_linear_on_other_ranks_modules_or_negative_weights(two: nn.Module) -> None:
    _refused(
        two,
        "method 'linear' needs adapters of one rank, got r=4 ('a'), r=2 ('b'); use 'cat' or 'svd' to combine other "
        "ranks",
        ["a", "b"],
        [1.0, 1.0],
        "ab",
        method="linear",
    )
    _attach(two, "c", 3, r=4, target_modules=["attn.q"])
    _refused(
        two,
        "method 'linear' needs adapters on the same modules: 'a' and 'c' differ on model.layers.0.self_attn.v_proj, "
        "model.layers.1.self_attn.v_proj; use 'cat' or 'svd' to combine adapters on different modules",
        ["a", "c"],
        [1.0, 1.0],
        "ac",
        method="linear",
    )
    _attach(two, "e", 4, r=4, target_modules=["attn.q", "attn.v"])
    _refused(
        two,
        "method 'linear' scales A and B each by sqrt(weight * scale), which a negative weight does not have "
        "('e': -0.5); use 'cat' or 'svd' for negative weights",
        ["a", "e"],
        [1.0, -0.5],
        "ae",
        method="linear",
    )


def test_refuses_bad_arguments(two: nn.Module) -> None:
    _refused(
        two,
        "combine: an adapter named 'a' is already attached; detach it first or choose another name",
        ["a", "b"],
        [1.0, 1.0],
        "a",
    )
    _refused(two, "combine: 1 weight(s) for 2 adapter(s); give one weight per adapter", ["a", "b"], [1.0], "ab")
    _refused(
        two,
        "unknown combination method 'mean' for adapter type 'lora'; expected one of: cat, linear, svd, ties, "
        "dare_linear, dare_ties",
        ["a", "b"],
        [1.0, 1.0],
        "ab",
        method="mean",
    )
    for density in (0.0, 1.5, -0.1):
        _refused(
            two, f"density must be in (0, 1], got {density!r}", ["a", "b"], [1, 1], "ab", method="ties", density=density
        )
    _refused(
        two,
        "method 'dare_ties' needs density, the fraction of entries kept, in (0, 1]",
        ["a", "b"],
        [1, 1],
        "ab",
        method="dare_ties",
    )
    _refused(
        two,
        "density applies only to methods ties, dare_linear, dare_ties, not to 'svd'",
        ["a", "b"],
        [1, 1],
        "ab",
        method="svd",
        density=0.5,
    )
    _refused(
        two,
        "rank applies only to methods svd, ties, dare_linear, dare_ties, not to 'cat'",
        ["a", "b"],
        [1, 1],
        "ab",
        rank=3,
    )
    _refused(
        two,
        "combine: no adapter named 'zz' is attached (attached: a, b)",
        ["a", "zz"],
        [1, 1],
        "ab",
    )


# ---- save and load ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["cat", "svd"])
def test_the_combination_saves_and_loads(two: nn.Module, tmp_path, method: str) -> None:
    la.combine(two, ["a", "b"], [0.7, 0.3], "ab", method=method)
    la.set_active(two, "ab")
    ids = token_ids()
    want = logits(two, ids)
    la.save_adapter(two, tmp_path / "ab", "ab")
    fresh = _model()
    la.load_adapter(fresh, tmp_path / "ab", "ab")
    assert la.engine.adapter_config(fresh, "ab") == la.engine.adapter_config(two, "ab")
    torch.testing.assert_close(logits(fresh, ids), want, atol=1e-6, rtol=0)
    assert not torch.allclose(want, logits(_model(), ids))  # the combination does change the model
