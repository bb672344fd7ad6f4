"""(IA)^3 against hand-written references: the forward of a tiny LLaMA written in plain torch, the merged
weights and biases on LLaMA, GPT-2 (``Conv1D``, contiguous fused ``c_attn``) and BLOOM (fused per head, with
biases), bit-exact unmerge / detach in three dtypes, merging together with other adapters on the same modules,
and saving and loading."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.testing import tiny_model
from llm_adapters_ia3 import IA3InputScale, IA3OutputScale

NORMAL = {"type": "ia3", "init": "normal", "init_std": 0.3}
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _ids(vocab: int = 128, shape: tuple[int, int] = (2, 9)) -> torch.Tensor:
    return torch.randint(3, vocab, shape, generator=torch.Generator().manual_seed(0))


def _logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def _vectors(model: nn.Module, name: str = "default") -> dict[str, torch.Tensor]:
    """``<module path>.<slot>`` -> the vector ``l`` (a copy), from the adapter's file keys."""
    return {k.removesuffix(".scale"): p.detach().clone() for k, p in adapter_parameters(model, name).items()}


def _base_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The base model's tensors under their original names (wrapped modules hold theirs under ``.base.``)."""
    return {k.replace(".base.", "."): v for k, v in model.state_dict().items() if ".adapters." not in k}


def _tiny(family: str) -> nn.Module:
    """The family's tiny model with random biases (transformers initialises them to zero, which would hide a
    bias that is scaled wrongly, or not at all)."""
    model = tiny_model(family)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def _attached(family: str, config: dict | None = None, seed: int = 5) -> nn.Module:
    model = _tiny(family)
    torch.manual_seed(seed)  # init "normal" draws from torch's default generator
    la.attach(model, dict(config or NORMAL))
    return model


# ---- placement ------------------------------------------------------------------------------------------
def test_default_placement_and_layers_on_llama() -> None:
    model = _attached("llama", {"type": "ia3"})
    cfg = model.config
    kv = cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads)
    vectors = _vectors(model)
    expected = {}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        expected |= {f"{p}self_attn.k_proj.post": kv, f"{p}self_attn.v_proj.post": kv}
        expected[f"{p}mlp.down_proj.pre"] = cfg.intermediate_size
    assert {k: v.shape[0] for k, v in vectors.items()} == expected
    assert all(torch.equal(v, torch.ones_like(v)) for v in vectors.values())  # init "ones"
    (info,) = la.list_adapters(model)
    assert info.type == "ia3" and info.mergeable and info.parameters == sum(expected.values())
    layers = model.model.layers[0]
    assert isinstance(layers.self_attn.k_proj.adapters["default"]["post"], IA3OutputScale)
    assert isinstance(layers.mlp.down_proj.adapters["default"]["pre"], IA3InputScale)


def test_default_placement_on_fused_projections() -> None:
    for family, qkv, down, d_ff in (
        ("gpt2", "transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_proj", 64),
        ("bloom", "transformer.h.0.self_attention.query_key_value", "transformer.h.0.mlp.dense_4h_to_h", 128),
    ):
        vectors = _vectors(_attached(family, {"type": "ia3"}))
        assert vectors[f"{qkv}.post_k"].shape == (32,) and vectors[f"{qkv}.post_v"].shape == (32,)
        assert f"{qkv}.post_q" not in vectors
        assert vectors[f"{down}.pre"].shape == (d_ff,)


@pytest.mark.parametrize(
    "targets", [["k_proj", "down_proj"], r"model\.layers\.\d+\.(self_attn\.k_proj|mlp\.down_proj)"]
)
def test_given_targets_take_their_kind_from_the_role(targets: list[str] | str) -> None:
    vectors = _vectors(_attached("llama", {"type": "ia3", "target_modules": targets}))
    assert sorted(vectors) == [
        "model.layers.0.mlp.down_proj.pre",
        "model.layers.0.self_attn.k_proj.post",
        "model.layers.1.mlp.down_proj.pre",
        "model.layers.1.self_attn.k_proj.post",
    ]


def test_config_is_validated() -> None:
    from llm_adapters.errors import ConfigError

    for bad in ({"init_std": 0.0}, {"init_std": 1.5}, {"init": "zeros"}, {"scale": 1.0}):
        with pytest.raises(ConfigError):
            la.attach(tiny_model("llama"), {"type": "ia3", **bad})


# ---- the forward against a plain-torch LLaMA --------------------------------------------------------------
def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def _reference_llama(cfg, sd: dict[str, torch.Tensor], vec: dict[str, torch.Tensor], ids: torch.Tensor):  # type: ignore[no-untyped-def]
    """LLaMA's forward in plain torch (RMSNorm, RoPE, grouped-query causal attention, SwiGLU), with the
    (IA)^3 vectors applied as the paper says: ``l_k * K``, ``l_v * V`` after their projections and
    ``l_ff * (silu(gate) * up)`` before the down projection."""
    n_heads, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = cfg.hidden_size // n_heads
    eps = cfg.rms_norm_eps
    rope = getattr(cfg, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    b, t = ids.shape
    inv_freq = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)  # (hd / 2,)
    angles = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]  # (t, hd / 2)
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)  # (t, hd)
    causal = torch.ones(t, t, dtype=torch.bool).triu(1)  # True above the diagonal: masked
    h = sd["model.embed_tokens.weight"][ids]  # (b, t, D)
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        a = _rms(h, sd[p + "input_layernorm.weight"], eps)
        q = a @ sd[p + "self_attn.q_proj.weight"].T  # (b, t, H * hd)
        k = vec[p + "self_attn.k_proj.post"] * (a @ sd[p + "self_attn.k_proj.weight"].T)  # l_k * K: (b, t, KV * hd)
        v = vec[p + "self_attn.v_proj.post"] * (a @ sd[p + "self_attn.v_proj.weight"].T)  # l_v * V
        q = _rotate(q.view(b, t, n_heads, hd).transpose(1, 2), cos, sin)  # (b, H, t, hd)
        k = _rotate(k.view(b, t, n_kv, hd).transpose(1, 2), cos, sin).repeat_interleave(n_heads // n_kv, dim=1)
        v = v.view(b, t, n_kv, hd).transpose(1, 2).repeat_interleave(n_heads // n_kv, dim=1)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(causal, float("-inf"))  # (b, H, t, t)
        att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, n_heads * hd)
        h = h + att @ sd[p + "self_attn.o_proj.weight"].T
        m = _rms(h, sd[p + "post_attention_layernorm.weight"], eps)
        act = F.silu(m @ sd[p + "mlp.gate_proj.weight"].T) * (m @ sd[p + "mlp.up_proj.weight"].T)  # (b, t, d_ff)
        h = h + (vec[p + "mlp.down_proj.pre"] * act) @ sd[p + "mlp.down_proj.weight"].T  # l_ff * act
    return _rms(h, sd["model.norm.weight"], eps) @ sd["lm_head.weight"].T


def test_forward_matches_plain_torch_llama() -> None:
    base = tiny_model("llama")
    sd = {k: v.detach().clone() for k, v in base.state_dict().items()}
    model = _attached("llama")
    vec = _vectors(model)
    assert all((v - 1).abs().max() > 0.05 for v in vec.values())  # away from the identity
    ids = _ids()
    ones = {k: torch.ones_like(v) for k, v in vec.items()}
    # the reference itself: with every vector at one it is the base model
    torch.testing.assert_close(_reference_llama(base.config, sd, ones, ids), _logits(base, ids), atol=1e-5, rtol=0)
    expected = _reference_llama(base.config, sd, vec, ids)
    assert not torch.allclose(expected, _logits(base, ids), atol=1e-3)
    torch.testing.assert_close(_logits(model, ids), expected, atol=1e-5, rtol=0)


def test_ones_is_the_base_model_exactly(tiny_model_factory: Callable[..., nn.Module]) -> None:
    ids = _ids()
    model = tiny_model_factory("llama")
    la.attach(model, {"type": "ia3"})
    assert torch.equal(_logits(model, ids), _logits(tiny_model_factory("llama"), ids))  # l * y with l = 1 is y


# ---- merging ----------------------------------------------------------------------------------------------
def _expected_merge(
    family: str, base: dict[str, torch.Tensor], vec: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The merged base tensors, by hand: ``W' = diag(l) W`` and ``b' = l * b`` on the key / value rows of
    the projection (their own rows of a fused one, found here from the model's layout), ``W' = W diag(l)``
    on the down projection (bias unchanged). Weights in ``(out, in)`` layout except GPT-2's ``Conv1D``
    (``(in, out)``)."""
    out = {k: v.clone() for k, v in base.items()}
    if family == "llama":
        for key, scale in vec.items():
            path, slot = key.rsplit(".", 1)
            w = out[f"{path}.weight"]  # (out, in)
            out[f"{path}.weight"] = scale[:, None] * w if slot == "post" else w * scale[None, :]
        return out
    d, heads = 32, 4
    hd = d // heads
    if family == "gpt2":  # c_attn: Conv1D (D, 3D), output columns [q | k | v]
        rows = {"post_k": torch.arange(d, 2 * d), "post_v": torch.arange(2 * d, 3 * d)}
    else:  # bloom: output viewed as (heads, 3, hd): [q_0 k_0 v_0 | q_1 k_1 v_1 | ...]
        per_head = torch.arange(3 * d).view(heads, 3, hd)
        rows = {"post_k": per_head[:, 1].reshape(-1), "post_v": per_head[:, 2].reshape(-1)}
    for key, scale in vec.items():
        path, slot = key.rsplit(".", 1)
        w, b = out[f"{path}.weight"], out[f"{path}.bias"]
        if slot == "pre":  # the down projection: its input channels
            out[f"{path}.weight"] = scale[:, None] * w if family == "gpt2" else w * scale[None, :]
            continue
        idx = rows[slot]
        if family == "gpt2":
            w[:, idx] = w[:, idx] * scale[None, :]
        else:
            w[idx] = scale[:, None] * w[idx]
        b[idx] = scale * b[idx]  # the bias is part of the scaled output
    return out


@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
def test_merge_equals_unmerged_and_the_hand_merged_weights(family: str) -> None:
    model = _attached(family)
    base = _base_state(model)
    base = {k: v.clone() for k, v in base.items()}
    vec = _vectors(model)
    ids = _ids()
    unmerged = _logits(model, ids)
    la.merge(model)
    assert la.list_adapters(model)[0].merged
    torch.testing.assert_close(_logits(model, ids), unmerged, atol=1e-5, rtol=0)
    expected = _expected_merge(family, base, vec)
    merged = _base_state(model)
    changed = [k for k in base if not torch.equal(merged[k], base[k])]
    assert sorted(changed) == sorted(k for k in expected if not torch.equal(expected[k], base[k]))
    if family in ("gpt2", "bloom"):
        assert any(k.endswith("bias") for k in changed), "the key / value biases are scaled too"
    for k in base:
        torch.testing.assert_close(merged[k], expected[k], atol=1e-6, rtol=1e-6, msg=k)
    la.unmerge(model)
    torch.testing.assert_close(_logits(model, ids), unmerged, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
def test_merge_and_unload_leaves_a_plain_model_with_the_same_outputs(family: str) -> None:
    model = _attached(family)
    ids = _ids()
    unmerged = _logits(model, ids)
    plain_keys = list(_tiny(family).state_dict())
    la.merge(model, unload=True)
    assert list(model.state_dict()) == plain_keys
    torch.testing.assert_close(_logits(model, ids), unmerged, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
def test_unmerge_and_detach_restore_the_base_bit_for_bit(family: str, dtype: torch.dtype) -> None:
    model = _tiny(family).to(dtype)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    la.attach(model, dict(NORMAL))
    assert all(p.dtype == torch.float32 for p in adapter_parameters(model, "default").values())
    for _ in range(2):  # merge -> unmerge, twice
        la.merge(model)
        merged = _base_state(model)
        assert all(merged[k].dtype == dtype for k in before)
        assert any(not torch.equal(merged[k], before[k]) for k in before), "the merge changed nothing"
        la.unmerge(model)
        after = _base_state(model)
        assert all(torch.equal(after[k], before[k]) for k in before), dtype
    la.merge(model)  # merge -> detach
    la.detach(model)
    state = model.state_dict()
    assert list(state) == list(before)
    assert all(torch.equal(state[k], before[k]) for k in before), dtype


# ---- saving and loading -----------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
def test_save_load_round_trip(family: str, tmp_path: Path) -> None:
    model = _attached(family)
    ids = _ids()
    expected = _logits(model, ids)
    la.save_adapter(model, tmp_path / "ia3")
    saved = json.loads((tmp_path / "ia3" / "llm_adapters_config.json").read_text())
    assert saved["adapter_type"] == "ia3"
    assert saved["config"] | {"target_modules": None} == {**NORMAL, "target_modules": None}
    parts = {"llama": (None, None), "gpt2": ("k", "v"), "bloom": ("k", "v")}[family]
    assert {(t["role"], t["kind"], t["part"]) for t in saved["targets"]} == {
        ("attn.k", "post", parts[0]),
        ("attn.v", "post", parts[1]),
        ("mlp.down", "pre", None),
    }
    fresh = _tiny(family)
    la.load_adapter(fresh, tmp_path / "ia3", name="again")
    assert [a.name for a in la.list_adapters(fresh)] == ["again"]
    original, loaded = _vectors(model), _vectors(fresh, "again")
    assert original.keys() == loaded.keys()
    assert all(torch.equal(loaded[k], original[k]) for k in original)
    assert torch.equal(_logits(fresh, ids), expected)
    la.merge(fresh)  # a loaded adapter merges like the one it was saved from
    torch.testing.assert_close(_logits(fresh, ids), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
def test_merges_together_with_another_adapter_on_the_same_modules(family: str) -> None:
    """LoRA (parallel, on attn.q and attn.v) and a second (IA)^3 share modules with the first (IA)^3: a
    rescaling layer merges only together with every active layer of its module, and then exactly."""
    from llm_adapters.errors import AdapterStateError

    model = _attached(family)
    la.attach(model, {"type": "lora", "r": 2, "dropout": 0.0}, name="lora")
    la.attach(model, {**NORMAL, "target_modules": ["attn.v"]}, name="more")
    with torch.no_grad():
        for p in adapter_parameters(model, "lora").values():
            p.copy_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    la.set_active(model, ["default", "lora", "more"])
    ids = _ids()
    unmerged = _logits(model, ids)
    before = {k: v.clone() for k, v in _base_state(model).items()}
    with pytest.raises(AdapterStateError, match="every active adapter on it must be merged with it"):
        la.merge(model, "default")
    assert all(torch.equal(v, before[k]) for k, v in _base_state(model).items())  # nothing changed
    la.merge(model, ["default", "lora", "more"])
    torch.testing.assert_close(_logits(model, ids), unmerged, atol=1e-5, rtol=0)
    la.unmerge(model)
    assert all(torch.equal(v, before[k]) for k, v in _base_state(model).items())


def _ia3_and_lora_on_v() -> nn.Module:
    model = _attached("llama", {**NORMAL, "target_modules": ["attn.v"]})
    la.attach(model, {"type": "lora", "r": 2, "dropout": 0.0, "target_modules": ["attn.v"]}, name="lora")
    with torch.no_grad():
        for p in adapter_parameters(model, "lora").values():
            p.copy_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    la.set_active(model, ["default", "lora"])
    return model


@pytest.mark.parametrize("route", ["activate-after-merge", "unmerge-the-partner"])
def test_a_merged_rescaling_never_silently_changes_the_composition(route: str) -> None:
    """After any sequence of merge / unmerge / set_active, the model computes what the unmerged composition
    computes, or the call that would break that is refused."""
    from llm_adapters.errors import AdapterStateError

    model = _ia3_and_lora_on_v()
    ids = _ids()
    unmerged = _logits(model, ids)
    if route == "activate-after-merge":
        la.set_active(model, ["default"])
        la.merge(model, "default")  # allowed: the LoRA on the same module is inactive
        with pytest.raises(AdapterStateError, match=r"cannot set_active\(\['default', 'lora'\]\): the merged"):
            la.set_active(model, ["default", "lora"])  # would leave LoRA unscaled next to the folded vector
        assert [a.name for a in la.list_adapters(model) if a.active] == ["default"]
        la.unmerge(model)
        la.set_active(model, ["default", "lora"])
    else:
        la.merge(model, ["default", "lora"])  # allowed: merged together
        with pytest.raises(AdapterStateError, match=r"cannot unmerge lora: the merged adapter 'default'"):
            la.unmerge(model, "lora")  # would leave LoRA unscaled next to the folded vector
        assert all(a.merged for a in la.list_adapters(model))
    torch.testing.assert_close(_logits(model, ids), unmerged, atol=1e-5, rtol=0)
