"""The fused q/k/v layouts: the rows the family names for ``q``, ``k`` and ``v`` are exactly the query,
key and value the model's own attention computes from the fused projection's output."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from llm_adapters import AttentionDims, FusedProjection, model_families
from llm_adapters.testing.models import tiny_model_from_config

from .helpers import fused_cases

CASES = fused_cases()


def _split_like_the_model(case: str, attn: Any, fused: torch.Tensor, config: Any) -> dict[str, torch.Tensor]:
    """q, k, v as ``(batch, length, heads_of_that_part * head_dim)``, split the way transformers does."""
    b, t, _ = fused.shape
    if case == "gpt2":  # GPT2Attention.forward: c_attn(x).split(split_size, dim=2)
        q, k, v = fused.split(attn.split_size, dim=2)
        return {"q": q, "k": k, "v": v}
    if case == "bloom":  # BloomAttention._reshape returns (batch, heads, length, head_dim)
        parts = attn._reshape(fused)
        return {p: x.transpose(1, 2).reshape(b, t, -1) for p, x in zip("qkv", parts, strict=True)}
    if case == "gpt_neox":  # GPTNeoXAttention.forward, written out: view (.., heads, 3 * head_dim), chunk(3)
        qkv = fused.view(b, t, -1, 3 * attn.head_size).transpose(1, 2)
        parts = qkv.chunk(3, dim=-1)  # each (batch, heads, length, head_dim)
        return {p: x.transpose(1, 2).reshape(b, t, -1) for p, x in zip("qkv", parts, strict=True)}
    # Falcon: FalconAttention._split_heads returns (batch, length, heads_of_part, head_dim)
    q, k, v = attn._split_heads(fused)
    if config.new_decoder_architecture:  # keys / values come broadcast to every query head: keep one per group
        group = config.num_attention_heads // config.num_kv_heads
        k, v = k[:, :, ::group], v[:, :, ::group]
    return {p: x.reshape(b, t, -1) for p, x in zip("qkv", (q, k, v), strict=True)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_part_rows_select_the_models_own_q_k_v(case: str) -> None:
    model = tiny_model_from_config(CASES[case])
    family = model_families()[model.config.model_type]
    path = family.role_sites(model, "attn.qkv")[0][0]
    fused_module = model.get_submodule(path)
    attn = model.get_submodule(path.rsplit(".", 1)[0])
    captured: list[torch.Tensor] = []
    handle = fused_module.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    ids = torch.randint(3, model.config.vocab_size, (2, 5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(input_ids=ids)
    handle.remove()
    fused = captured[0]  # (batch, length, fused features) of block 0
    reference = _split_like_the_model(case, attn, fused, model.config)
    rows = {p: family.part_indices("attn.qkv", p, model.config) for p in "qkv"}
    for part in "qkv":
        torch.testing.assert_close(fused.index_select(-1, rows[part]), reference[part], atol=0, rtol=0)
    # together the parts cover every output feature exactly once
    assert torch.equal(torch.sort(torch.cat(list(rows.values()))).values, torch.arange(fused.shape[-1]))


# ---- the layouts themselves, against explicit reshapes -------------------------------------------
def _dims(heads: int, kv: int, d: int) -> AttentionDims:
    return AttentionDims(
        num_layers=1, hidden_size=heads * d, num_attention_heads=heads, num_key_value_heads=kv, head_dim=d
    )


@pytest.mark.parametrize(("heads", "kv", "d"), [(4, 4, 3), (6, 2, 2), (8, 1, 2), (3, 3, 1)])
def test_per_head_layout_is_the_grouped_view(heads: int, kv: int, d: int) -> None:
    group = heads // kv
    features = torch.arange((heads + 2 * kv) * d)
    view = features.view(kv, group + 2, d)  # per key/value group: its query heads, its key head, its value head
    expected = {"q": view[:, :group].reshape(-1), "k": view[:, group].reshape(-1), "v": view[:, group + 1].reshape(-1)}
    layout = FusedProjection("per_head")
    for part in "qkv":
        assert torch.equal(layout.part_indices(part, _dims(heads, kv, d)), expected[part])


def test_per_head_without_grouping_is_bloom_view() -> None:
    heads, d = 4, 3
    view = torch.arange(3 * heads * d).view(heads, 3, d)  # BLOOM: (heads, 3, head_dim)
    for i, part in enumerate("qkv"):
        assert torch.equal(
            FusedProjection("per_head").part_indices(part, _dims(heads, heads, d)), view[:, i].reshape(-1)
        )


def test_per_head_with_one_kv_head_equals_contiguous() -> None:
    dims = _dims(8, 1, 4)
    for part in "qkv":
        assert torch.equal(
            FusedProjection("per_head").part_indices(part, dims), FusedProjection("contiguous").part_indices(part, dims)
        )


def test_contiguous_layout_is_three_blocks() -> None:
    heads, kv, d = 6, 2, 4
    q, k, v = torch.arange((heads + 2 * kv) * d).split([heads * d, kv * d, kv * d])
    layout = FusedProjection("contiguous")
    for part, expected in zip("qkv", (q, k, v), strict=True):
        assert torch.equal(layout.part_indices(part, _dims(heads, kv, d)), expected)


def test_per_head_rejects_uneven_groups() -> None:
    with pytest.raises(ValueError, match="the 6 attention heads to split evenly into groups per key/value head, got 4"):
        FusedProjection("per_head").part_indices("q", _dims(6, 4, 2))
