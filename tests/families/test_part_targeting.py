"""An adapter on ``attn.q`` and ``attn.v`` of a fused projection changes exactly the query and value rows.

Reference: a copy of the base model whose fused weight gets the adapter's low-rank change added by hand to
the query and value slices, written from each model's own code (not from the family's part indices).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters import model_families
from llm_adapters.engine import adapter_parameters
from llm_adapters.testing.models import tiny_model_from_config

from .helpers import fused_cases

CASES = fused_cases()


def _add_to_q_and_v(case: str, weight: torch.Tensor, dq: torch.Tensor, dv: torch.Tensor, config: Any) -> None:
    """Add ``dq`` (query rows x in) and ``dv`` (value rows x in) to the fused weight, in place."""
    hidden = dq.shape[1]
    if case == "gpt2":  # Conv1D weight (in, 3 * hidden): columns [q | k | v]
        weight[:, :hidden] += dq.t()
        weight[:, 2 * hidden :] += dv.t()
        return
    d = hidden // config.num_attention_heads
    if case in ("bloom", "gpt_neox", "falcon-per-head"):  # (heads, 3, head_dim, in)
        w = weight.view(config.num_attention_heads, 3, d, -1)
        w[:, 0] += dq.view(config.num_attention_heads, d, -1)
        w[:, 2] += dv.view(config.num_attention_heads, d, -1)
    elif case == "falcon-multi-query":  # (heads + 2, head_dim, in): all query heads, one key, one value
        w = weight.view(config.num_attention_heads + 2, d, -1)
        w[: config.num_attention_heads] += dq.view(config.num_attention_heads, d, -1)
        w[-1] += dv
    elif case == "falcon-grouped":  # (kv, heads / kv + 2, head_dim, in)
        kv, group = config.num_kv_heads, config.num_attention_heads // config.num_kv_heads
        w = weight.view(kv, group + 2, d, -1)
        w[:, :group] += dq.view(kv, group, d, -1)
        w[:, group + 1] += dv.view(kv, d, -1)
    else:
        raise AssertionError(case)


def _logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("case", sorted(CASES))
def test_q_and_v_parts_match_hand_sliced_weights(case: str) -> None:
    model = tiny_model_from_config(CASES[case])
    reference = copy.deepcopy(model)
    family = model_families()[model.config.model_type]
    la.attach(model, {"type": "famprobe", "rank": 3, "target_modules": ["attn.q", "attn.v"]})
    g = torch.Generator().manual_seed(1)
    params = adapter_parameters(model, "default")
    with torch.no_grad():
        for key in sorted(params):
            params[key].copy_(0.3 * torch.randn(params[key].shape, generator=g))
    paths = [p for p, _ in family.role_sites(model, "attn.qkv")]
    with torch.no_grad():
        for path in paths:
            dq = params[f"{path}.parallel_q.up"] @ params[f"{path}.parallel_q.down"]  # (query rows, in)
            dv = params[f"{path}.parallel_v.up"] @ params[f"{path}.parallel_v.down"]  # (value rows, in)
            _add_to_q_and_v(case, reference.get_submodule(path).weight, dq, dv, model.config)
    ids = torch.randint(3, model.config.vocab_size, (2, 6), generator=torch.Generator().manual_seed(0))
    expected = _logits(reference, ids)
    assert not torch.allclose(expected, _base(case, ids), atol=1e-3)  # the change is visible in the outputs
    torch.testing.assert_close(_logits(model, ids), expected, atol=1e-5, rtol=1e-4)
    # merging writes the same change into the fused weight
    la.merge(model)
    for path in paths:
        merged = model.get_submodule(path).base.weight
        torch.testing.assert_close(merged, reference.get_submodule(path).weight, atol=1e-6, rtol=1e-5)


def _base(case: str, ids: torch.Tensor) -> torch.Tensor:
    return _logits(tiny_model_from_config(CASES[case]), ids)
