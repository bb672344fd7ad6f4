"""The two initialisations: 'bert' (both N(0, 0.02)) and 'identity' (Down Kaiming-uniform, Up = 0)."""

from __future__ import annotations

import math

import torch

from llm_adapters_series import SeriesConfig, SeriesLayer


def test_bert_draws_both_matrices_from_n_0_002() -> None:
    torch.manual_seed(0)
    layer = SeriesLayer(512, SeriesConfig(bottleneck_size=256, init="bert"))
    for w in (layer.down.weight, layer.up.weight):  # 131072 draws each
        assert abs(w.mean().item()) < 1e-3
        assert abs(w.std().item() - 0.02) < 5e-4


def test_identity_zeroes_up_and_draws_down_kaiming_uniform() -> None:
    torch.manual_seed(0)
    layer = SeriesLayer(400, SeriesConfig(bottleneck_size=300, init="identity"))
    assert torch.count_nonzero(layer.up.weight) == 0
    bound = 1 / math.sqrt(400)  # kaiming_uniform(a=sqrt 5): gain sqrt(1/3), bound = gain * sqrt(3 / fan_in)
    down = layer.down.weight
    assert down.abs().max().item() <= bound
    assert abs(down.std().item() - bound / math.sqrt(3)) < 0.02 * bound  # the std of U(-b, b) is b / sqrt 3
    h = torch.randn(3, 400)
    torch.testing.assert_close(layer(h), h, atol=0, rtol=0)
