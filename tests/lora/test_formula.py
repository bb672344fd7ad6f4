"""Our LoRA / rsLoRA / DoRA layers against a hand-written reference of each formula, on a one-layer toy model
(no family, explicit target), including the initialisation, dropout and merging."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters_lora import DoRALayer, LoRALayer

from .helpers import randomise

D_IN, D_OUT = 12, 10


class Toy(nn.Module):
    def __init__(self, bias: bool = True) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.proj = nn.Linear(D_IN, D_OUT, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _attached(config: dict, bias: bool = True) -> tuple[Toy, dict[str, torch.Tensor], Toy]:
    model = Toy(bias)
    base = copy.deepcopy(model)
    la.attach(model, {"type": "lora", "target_modules": ["proj"], **config})
    randomise(model)
    params = {k.rsplit(".", 1)[-1]: p.detach() for k, p in adapter_parameters(model, "default").items()}
    return model, params, base


def _x() -> torch.Tensor:
    return torch.randn(3, 5, D_IN, generator=torch.Generator().manual_seed(7))


def _reference_lora(base: Toy, p: dict[str, torch.Tensor], x: torch.Tensor, s: float) -> torch.Tensor:
    W, b = base.proj.weight.detach(), base.proj.bias
    y = torch.einsum("oi,bti->bto", W, x)
    if b is not None:
        y = y + b
    return y + s * torch.einsum("or,ri,bti->bto", p["lora_B"], p["lora_A"], x)


def _reference_dora(base: Toy, p: dict[str, torch.Tensor], x: torch.Tensor, s: float) -> torch.Tensor:
    # W' = m * (W + s B A) / ||W + s B A||_c, the norm of each output row (Liu et al., 2024, eq. 5)
    W, b = base.proj.weight.detach(), base.proj.bias
    V = W + s * p["lora_B"] @ p["lora_A"]
    norms = torch.sqrt((V * V).sum(dim=1, keepdim=True))
    W2 = p["magnitude"][:, None] * V / norms
    y = torch.einsum("oi,bti->bto", W2, x)
    return y if b is None else y + b


@pytest.mark.parametrize(
    ("config", "scale"),
    [({"r": 4, "alpha": 8}, 2.0), ({"r": 4, "alpha": 6, "use_rslora": True}, 3.0), ({"r": 3, "alpha": 1}, 1 / 3)],
)
def test_lora_matches_reference(config: dict, scale: float) -> None:
    model, p, base = _attached({**config, "dropout": 0.0})
    x = _x()
    torch.testing.assert_close(model(x), _reference_lora(base, p, x, scale), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    ("config", "scale"), [({"r": 4, "alpha": 8}, 2.0), ({"r": 4, "alpha": 8, "use_rslora": True}, 4.0)]
)
def test_dora_matches_reference(config: dict, scale: float, bias: bool) -> None:
    model, p, base = _attached({**config, "dropout": 0.0, "use_dora": True}, bias=bias)
    x = _x()
    torch.testing.assert_close(model(x), _reference_dora(base, p, x, scale), atol=1e-5, rtol=1e-5)


def test_initialisation_is_identity_with_kaiming_uniform_a() -> None:
    for use_dora in (False, True):
        model = Toy()
        base = copy.deepcopy(model)
        la.attach(model, {"type": "lora", "r": 64, "target_modules": ["proj"], "use_dora": use_dora})
        layer = model.proj.adapters["default"]["parallel"]
        assert isinstance(layer, DoRALayer if use_dora else LoRALayer)
        assert layer.lora_A.shape == (64, D_IN) and layer.lora_B.shape == (D_OUT, 64)
        assert torch.count_nonzero(layer.lora_B) == 0
        # kaiming_uniform_(a=sqrt(5)): U(-b, b) with b = sqrt(6 / ((1 + a^2) * fan_in)) = 1 / sqrt(fan_in)
        bound = 1 / math.sqrt(D_IN)
        assert layer.lora_A.abs().max() <= bound and layer.lora_A.abs().max() > 0.8 * bound
        assert layer.lora_A.std() > 0.4 * bound
        if use_dora:
            torch.testing.assert_close(layer.magnitude.detach(), base.proj.weight.detach().norm(dim=1))
        x = _x()
        torch.testing.assert_close(model(x), base(x), atol=1e-6, rtol=1e-5)


def _recording_dropout(model: Toy) -> list[torch.Tensor]:
    """Record every keep-mask the layer's dropout draws, so a reference can apply the same one."""
    dropout = model.proj.adapters["default"]["parallel"].dropout
    masks: list[torch.Tensor] = []
    draw = dropout.mask

    def recorded(x: torch.Tensor) -> torch.Tensor:
        masks.append(draw(x))
        return masks[-1]

    dropout.mask = recorded
    return masks


def _keep(p: float) -> float:
    return 1 - round(p * 2**16) / 2**16  # the keep probability at 16-bit resolution


def test_dropout_is_skipped_at_zero_and_applied_in_training_only() -> None:
    model, p, base = _attached({"r": 4, "alpha": 8, "dropout": 0.0})
    assert model.proj.adapters["default"]["parallel"].dropout is None
    model, p, base = _attached({"r": 4, "alpha": 8, "dropout": 0.5})
    masks = _recording_dropout(model)
    x = _x()
    model.eval()
    torch.testing.assert_close(model(x), _reference_lora(base, p, x, 2.0), atol=1e-6, rtol=1e-5)
    assert masks == []
    model.train()
    out = model(x)
    (mask,) = masks
    assert mask.shape == x.shape and 0.4 < mask.float().mean() < 0.6
    xd = x * mask / _keep(0.5)  # inverted dropout
    expected = base(x) + (_reference_lora(base, p, xd, 2.0) - base(xd))  # W x + b + s B A drop(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_dora_training_dropout_follows_peft_convention() -> None:
    # with dropout active the DoRA branch sees drop(x) throughout: W x + b + (f - 1) W drop(x) + f s B A drop(x)
    model, p, base = _attached({"r": 4, "alpha": 8, "dropout": 0.3, "use_dora": True})
    masks = _recording_dropout(model)
    x = _x()
    model.train()
    out = model(x)
    (mask,) = masks
    xd = x * mask / _keep(0.3)
    W = base.proj.weight.detach()
    V = W + 2.0 * p["lora_B"] @ p["lora_A"]
    f = p["magnitude"] / V.norm(dim=1)
    expected = base(x) + (f - 1) * (xd @ W.t()) + f * 2.0 * (xd @ p["lora_A"].t() @ p["lora_B"].t())
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_dora_norm_gets_no_gradient() -> None:
    # DoRA section 4.3: ||W + s B A||_c is a constant for backprop, so d out / d B only flows through the
    # f * s * B A x term and the magnitude's gradient is (base term + lora term) / norm.
    model, p, base = _attached({"r": 4, "alpha": 8, "dropout": 0.0, "use_dora": True})
    x = _x()
    model(x).sum().backward()
    layer = model.proj.adapters["default"]["parallel"]
    W = base.proj.weight.detach()
    A, B, m = p["lora_A"], p["lora_B"], p["magnitude"]
    norm = (W + 2.0 * B @ A).norm(dim=1)  # constant
    xs = x.reshape(-1, D_IN).sum(0)  # d sum / d out = ones
    expected_B = 2.0 * (m / norm)[:, None] * (A @ xs)[None, :].expand(D_OUT, -1)
    expected_m = (W @ xs + 2.0 * B @ (A @ xs)) / norm
    torch.testing.assert_close(layer.lora_B.grad, expected_B, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(layer.magnitude.grad, expected_m, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("use_dora", [False, True])
def test_merge_unmerge_exact(use_dora: bool) -> None:
    model, p, base = _attached({"r": 4, "alpha": 8, "dropout": 0.0, "use_dora": use_dora})
    x = _x()
    unmerged = model(x)
    w0 = model.proj.base.weight.detach().clone()
    la.merge(model)
    merged_w = model.proj.base.weight.detach().clone()
    if use_dora:
        V = w0 + 2.0 * p["lora_B"] @ p["lora_A"]
        expected_w = p["magnitude"][:, None] * V / V.norm(dim=1, keepdim=True)
    else:
        expected_w = w0 + 2.0 * p["lora_B"] @ p["lora_A"]
    torch.testing.assert_close(merged_w, expected_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(model(x), unmerged, atol=1e-5, rtol=1e-5)
    la.merge(model)  # a no-op
    assert torch.equal(model.proj.base.weight, merged_w)
    la.unmerge(model)
    torch.testing.assert_close(model.proj.base.weight.detach(), w0, atol=1e-6, rtol=0)
    torch.testing.assert_close(model(x), unmerged, atol=1e-6, rtol=1e-5)
    la.unmerge(model)  # nothing merged: a no-op
    torch.testing.assert_close(model.proj.base.weight.detach(), w0, atol=1e-6, rtol=0)


def test_merge_and_unload_leaves_a_plain_model_with_the_update() -> None:
    model, p, base = _attached({"r": 4, "alpha": 8, "dropout": 0.0})
    x = _x()
    expected = model(x)
    la.merge(model, unload=True)
    assert type(model.proj) is nn.Linear
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_deep_copy_of_a_dora_model_reads_its_own_weight() -> None:
    model, p, base = _attached({"r": 4, "alpha": 8, "dropout": 0.0, "use_dora": True})
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.proj.base.weight.mul_(2)  # must not affect the original
    x = _x()
    torch.testing.assert_close(model(x), _reference_dora(base, p, x, 2.0), atol=1e-5, rtol=1e-5)
    doubled = copy.deepcopy(base)
    with torch.no_grad():
        doubled.proj.weight.mul_(2)
    torch.testing.assert_close(twin(x), _reference_dora(doubled, p, x, 2.0), atol=1e-5, rtol=1e-5)


def test_half_precision_base_keeps_float32_adapter() -> None:
    model = Toy().to(torch.bfloat16)
    la.attach(model, {"type": "lora", "r": 4, "dropout": 0.0, "use_dora": True, "target_modules": ["proj"]})
    layer = model.proj.adapters["default"]["parallel"]
    assert {p.dtype for p in layer.parameters()} == {torch.float32}
    randomise(model)
    out = model(_x().to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
