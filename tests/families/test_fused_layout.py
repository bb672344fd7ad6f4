"""The fused q/k/v layouts against explicit reshapes. That the rows a family names for ``q``, ``k`` and ``v``
are the query, key and value the model itself computes is a check of the family conformance kit
(``test_conformance.py``: ``test_q_k_v_are_the_models_own``)."""

from __future__ import annotations

import pytest
import torch

from llm_adapters import AttentionDims, FusedProjection


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
