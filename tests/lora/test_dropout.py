"""The branch dropout: an inverted dropout whose keep probability is 1 - p to 16-bit resolution."""

from __future__ import annotations

import math

import pytest
import torch

from llm_adapters_lora.dropout import BranchDropout


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_keep_rate_and_unbiased_scale(p: float) -> None:
    drop = BranchDropout(p).train()
    assert abs(drop.keep - (1 - p)) <= 2**-17
    torch.manual_seed(0)
    x = torch.rand(400, 1000) + 0.5  # no zeros, so every zero of the output is a dropped element
    y, factor = drop(x)
    kept = y != 0
    assert factor == 1 / drop.keep
    n = x.numel()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * sigma
    assert torch.equal(y[kept], x[kept])  # kept elements pass unscaled: the caller applies `factor`
    # unbiased: E[y * factor] = x
    assert abs((y * factor).sum().item() / x.sum().item() - 1) < 5 * sigma / (1 - p)


def test_masks_are_fresh_shaped_like_the_input_and_seeded() -> None:
    drop = BranchDropout(0.5).train()
    x = torch.ones(3, 7, 11)
    torch.manual_seed(3)
    a = drop.mask(x)
    b = drop.mask(x)
    torch.manual_seed(3)
    c = drop.mask(x)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert set(a.unique().tolist()) == {0.0, 1.0}  # a 0 / 1 keep-mask of the input's dtype
    assert drop.mask(x.to(torch.bfloat16)).dtype == torch.bfloat16
    assert not torch.equal(a, b) and torch.equal(a, c)
    # each element independent: neighbouring 16-bit lanes of one 64-bit draw do not agree more than chance
    big = drop.mask(torch.ones(4 * 50_000)).view(-1, 4).float()
    agree = (big[:, 0] == big[:, 1]).float().mean().item()
    assert abs(agree - 0.5) < 0.01


def test_eval_mode_and_tiny_p_are_the_identity() -> None:
    x = torch.randn(5, 6)
    y, factor = BranchDropout(0.5).eval()(x)
    assert y is x and factor == 1.0
    y, factor = BranchDropout(1e-6).train()(x)  # rounds to a threshold of 0: nothing to drop
    assert y is x and factor == 1.0


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1])
def test_out_of_range_p_is_refused(p: float) -> None:
    with pytest.raises(ValueError) as info:
        BranchDropout(p)
    assert str(info.value) == f"dropout probability must be in (0, 1), got {p}"
