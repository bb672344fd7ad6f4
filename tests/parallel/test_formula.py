"""The parallel adapter's function against hand-written computations from the layers' raw weights.

y = W x + b + s * Up(tanh(Down(dropout(x)))), Down: (m, d_in), Up: (d_out, m).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterStateError
from tests.tiny_models import gpt2, ids, llama


def weights(model: torch.nn.Module, path: str, slot: str = "parallel") -> dict[str, torch.Tensor]:
    """The adapter's tensors at one site, by their short names (down.weight, up.weight, scale)."""
    prefix = f"{path}.{slot}."
    return {k[len(prefix) :]: p for k, p in adapter_parameters(model, "default").items() if k.startswith(prefix)}


def bottleneck(x: torch.Tensor, w: dict[str, torch.Tensor], s: float | torch.Tensor = 1.0) -> torch.Tensor:
    """s * Up(tanh(Down x)), written out with matrix products."""
    return s * (torch.tanh(x @ w["down.weight"].T) @ w["up.weight"].T)


def test_beside_a_linear_projection() -> None:
    model = llama()
    W = model.model.layers[0].self_attn.k_proj.weight.detach().clone()  # (16, 32): 2 key/value heads of 8
    la.attach(model, {"type": "parallel", "bottleneck_size": 8, "target_modules": ["layers.0.self_attn.k_proj"]})
    w = weights(model, "model.layers.0.self_attn.k_proj")
    assert w["down.weight"].shape == (8, 32) and w["up.weight"].shape == (16, 8)
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        got = model.model.layers[0].self_attn.k_proj(x)
        torch.testing.assert_close(got, x @ W.T + bottleneck(x, w))
        assert not torch.allclose(got, x @ W.T, atol=1e-4)  # the bert initialisation is not the identity


def test_gpt2_conv1d_with_bias() -> None:
    model = gpt2()
    c_attn = model.transformer.h[1].attn.c_attn
    W, b = c_attn.weight.detach().clone(), c_attn.bias.detach().clone()  # Conv1D: (in 32, out 96), y = x @ W + b
    la.attach(model, {"type": "parallel", "bottleneck_size": 4, "scaling": 0.5, "target_modules": ["c_attn"]})
    w = weights(model, "transformer.h.1.attn.c_attn")
    assert w["down.weight"].shape == (4, 32) and w["up.weight"].shape == (96, 4)
    x = torch.randn(3, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.transformer.h[1].attn.c_attn(x), x @ W + b + bottleneck(x, w, 0.5))


def test_on_the_query_part_of_a_fused_projection() -> None:
    model = gpt2()
    W, b = model.transformer.h[0].attn.c_attn.weight.detach().clone(), model.transformer.h[0].attn.c_attn.bias.detach()
    la.attach(model, {"type": "parallel", "bottleneck_size": 4, "target_modules": ["attn.q"]})
    w = weights(model, "transformer.h.0.attn.c_attn", "parallel_q")
    assert w["up.weight"].shape == (32, 4)  # only the 32 query features of the 96
    x = torch.randn(2, 32)
    with torch.no_grad():
        expected = x @ W + b
        expected[:, :32] += bottleneck(x, w)  # GPT-2 lays c_attn out as [q | k | v]
        torch.testing.assert_close(model.transformer.h[0].attn.c_attn(x), expected)


@pytest.mark.parametrize("scaling", [2, 2.0])
def test_constant_scaling_integer_or_float(scaling: float) -> None:
    model = llama()
    W = model.model.layers[1].mlp.up_proj.weight.detach().clone()
    la.attach(model, {"type": "parallel", "bottleneck_size": 4, "scaling": scaling, "target_modules": ["up_proj"]})
    w = weights(model, "model.layers.1.mlp.up_proj")
    x = torch.randn(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.model.layers[1].mlp.up_proj(x), x @ W.T + bottleneck(x, w, 2.0))


def test_learned_scale_is_one_trainable_scalar_per_site() -> None:
    model = llama()
    W = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    la.attach(model, {"type": "parallel", "bottleneck_size": 4, "scaling": "learned", "preset": "paper-best"})
    scales = {k: p for k, p in adapter_parameters(model, "default").items() if k.endswith(".scale")}
    assert sorted(scales) == [
        f"model.layers.{i}.mlp.{m}.parallel.scale" for i in (0, 1) for m in ("down_proj", "up_proj")
    ]
    assert all(p.shape == (1,) and p.item() == 1.0 and p.requires_grad for p in scales.values())
    w = weights(model, "model.layers.0.mlp.down_proj")
    with torch.no_grad():
        w["scale"].fill_(-0.5)
    x = torch.randn(2, 3, 48)
    out = model.model.layers[0].mlp.down_proj(x)
    torch.testing.assert_close(out, x @ W.T + bottleneck(x, w, -0.5))
    out.sum().backward()
    torch.testing.assert_close(w["scale"].grad, bottleneck(x, w).sum().detach().reshape(1))


def test_dropout_acts_on_the_adapter_input_only() -> None:
    model = llama()
    W = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    la.attach(
        model,
        {"type": "parallel", "bottleneck_size": 8, "dropout": 0.5, "target_modules": ["layers.0.self_attn.q_proj"]},
    )
    w = weights(model, "model.layers.0.self_attn.q_proj")
    module = model.model.layers[0].self_attn.q_proj
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(module(x), x @ W.T + bottleneck(x, w))  # evaluation: no dropout
        model.train()
        torch.manual_seed(3)
        got = module(x)
        torch.manual_seed(3)
        torch.testing.assert_close(got, x @ W.T + bottleneck(F.dropout(x, p=0.5, training=True), w))
        assert not torch.allclose(got, x @ W.T + bottleneck(x, w), atol=1e-4)


def test_whole_model_equals_hand_hooks_on_the_base_model() -> None:
    """paper-best on every layer: the adapted model's logits equal the base model's with the formula hooked in."""
    adapted, base = llama(), llama()
    la.attach(adapted, {"type": "parallel", "bottleneck_size": 8, "preset": "paper-best", "non_linearity": "relu"})
    handles = []
    for i, layer in enumerate(base.model.layers):
        for name in ("up_proj", "down_proj"):
            w = weights(adapted, f"model.layers.{i}.mlp.{name}")
            hook = lambda m, a, y, w=w: y + torch.relu(a[0] @ w["down.weight"].T) @ w["up.weight"].T  # noqa: E731
            handles.append(getattr(layer.mlp, name).register_forward_hook(hook))
    with torch.no_grad():
        torch.testing.assert_close(adapted(input_ids=ids()).logits, base(input_ids=ids()).logits)
    for handle in handles:
        handle.remove()


def test_identity_start_and_no_merge() -> None:
    model = llama()
    with torch.no_grad():
        ref = model(input_ids=ids()).logits
    la.attach(model, {"type": "parallel", "init": "identity", "bottleneck_size": 8})
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids()).logits, ref, atol=0, rtol=0)
    with pytest.raises(AdapterStateError, match="adapter 'default' \\(parallel\\) cannot be merged"):
        la.merge(model)
