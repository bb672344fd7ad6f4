"""The series adapter's function against hand-written computations from the layers' raw weights.

A(h) = s * Up(tanh(Down(h))) with Down: (m, d), Up: (d, m); pre: y = W (x + A(x)) + b; post: y = h + A(h).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from tests.tiny_models import gpt2, ids, llama


def weights(model: torch.nn.Module, path: str, slot: str, name: str = "default") -> dict[str, torch.Tensor]:
    """The adapter's tensors at one site, by their short names (down.weight, up.weight, scale)."""
    prefix = f"{path}.{slot}."
    return {k[len(prefix) :]: p for k, p in adapter_parameters(model, name).items() if k.startswith(prefix)}


def bottleneck(h: torch.Tensor, w: dict[str, torch.Tensor], s: float | torch.Tensor = 1.0) -> torch.Tensor:
    """s * Up(tanh(Down h)), written out with matrix products."""
    return s * (torch.tanh(h @ w["down.weight"].T) @ w["up.weight"].T)


def test_pre_adapter_changes_the_input_of_an_mlp_input_projection() -> None:
    model = llama()
    W = model.model.layers[0].mlp.up_proj.weight.detach().clone()  # (48, 32), no bias
    la.attach(model, {"type": "series", "bottleneck_size": 8, "placement": ["layers.0.mlp.up_proj:pre"]})
    w = weights(model, "model.layers.0.mlp.up_proj", "pre")
    assert w["down.weight"].shape == (8, 32) and w["up.weight"].shape == (32, 8)
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        got = model.model.layers[0].mlp.up_proj(x)
        expected = (x + bottleneck(x, w)) @ W.T
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, x @ W.T, atol=1e-4)  # the bert initialisation is not the identity


def test_post_adapter_changes_the_output_of_an_mlp_output_projection() -> None:
    model = llama()
    W = model.model.layers[1].mlp.down_proj.weight.detach().clone()  # (32, 48)
    cfg = {"type": "series", "bottleneck_size": 8, "scaling": 0.5, "placement": ["layers.1.mlp.down_proj:post"]}
    la.attach(model, cfg)
    w = weights(model, "model.layers.1.mlp.down_proj", "post")
    assert w["down.weight"].shape == (8, 32)  # a post adapter reads the output
    x = torch.randn(3, 48)
    with torch.no_grad():
        h = x @ W.T
        torch.testing.assert_close(model.model.layers[1].mlp.down_proj(x), h + bottleneck(h, w, 0.5))


def test_integer_scaling_works_and_equals_the_float() -> None:
    outs = []
    for scaling in (3, 3.0):
        model = llama()
        la.attach(model, {"type": "series", "bottleneck_size": 4, "scaling": scaling, "target_modules": ["o_proj"]})
        with torch.no_grad():
            outs.append(model(input_ids=ids()).logits)
    torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)
    model = llama()
    W = model.model.layers[0].self_attn.o_proj.weight.detach().clone()
    la.attach(
        model, {"type": "series", "bottleneck_size": 4, "scaling": 3, "target_modules": ["layers.0.self_attn.o_proj"]}
    )
    x = torch.randn(4, 32)
    with torch.no_grad():
        h = x @ W.T
        expected = h + bottleneck(h, weights(model, "model.layers.0.self_attn.o_proj", "post"), 3.0)
        torch.testing.assert_close(model.model.layers[0].self_attn.o_proj(x), expected)


def test_learned_scale_is_one_trainable_scalar_per_site() -> None:
    model = llama()
    W = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    la.attach(model, {"type": "series", "bottleneck_size": 4, "scaling": "learned", "variant": "adapterp"})
    params = adapter_parameters(model, "default")
    scales = {k: p for k, p in params.items() if k.endswith(".scale")}
    assert sorted(scales) == [f"model.layers.{i}.mlp.down_proj.post.scale" for i in (0, 1)]
    assert all(p.shape == (1,) and p.item() == 1.0 and p.requires_grad for p in scales.values())
    w = weights(model, "model.layers.0.mlp.down_proj", "post")
    with torch.no_grad():
        w["scale"].fill_(0.25)
    x = torch.randn(2, 3, 48)
    out = model.model.layers[0].mlp.down_proj(x)
    h = x @ W.T
    torch.testing.assert_close(out, h + bottleneck(h, w, 0.25))
    out.sum().backward()
    # d(sum out)/ds = sum of the unscaled bottleneck output
    torch.testing.assert_close(w["scale"].grad, bottleneck(h, w).sum().detach().reshape(1))


def test_dropout_acts_on_the_adapter_input_only() -> None:
    model = llama()
    W = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    cfg = {"type": "series", "bottleneck_size": 8, "dropout": 0.5, "placement": ["layers.0.mlp.down_proj:post"]}
    la.attach(model, cfg)
    w = weights(model, "model.layers.0.mlp.down_proj", "post")
    module = model.model.layers[0].mlp.down_proj
    x = torch.randn(2, 5, 48)
    h = x @ W.T
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(module(x), h + bottleneck(h, w))  # no dropout at evaluation
        model.train()
        torch.manual_seed(7)
        got = module(x)
        torch.manual_seed(7)
        expected = h + bottleneck(F.dropout(h, p=0.5, training=True), w)  # the residual h is not dropped
        torch.testing.assert_close(got, expected)
        assert not torch.allclose(got, h + bottleneck(h, w), atol=1e-4)


def test_identity_start_leaves_the_model_unchanged_even_in_training() -> None:
    model = llama()
    with torch.no_grad():
        ref = model(input_ids=ids()).logits
    la.attach(model, {"type": "series", "init": "mam_adapter", "dropout": 0.3, "bottleneck_size": 8})
    up = [p for k, p in adapter_parameters(model, "default").items() if k.endswith("up.weight")]
    assert len(up) == 6 and all(torch.count_nonzero(p) == 0 for p in up)
    model.train()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids()).logits, ref, atol=0, rtol=0)


def test_gpt2_conv1d_pre_and_post() -> None:
    model = gpt2()
    fc, proj = model.transformer.h[0].mlp.c_fc, model.transformer.h[0].mlp.c_proj
    # Conv1D keeps its weight as (in, out): y = x @ W + b
    Wfc, bfc = fc.weight.detach().clone(), fc.bias.detach().clone()  # (32, 48), (48,)
    Wpr, bpr = proj.weight.detach().clone(), proj.bias.detach().clone()  # (48, 32), (32,)
    la.attach(model, {"type": "series", "bottleneck_size": 4, "placement": ["mlp.c_fc:pre", "mlp.c_proj:post"]})
    pre = weights(model, "transformer.h.0.mlp.c_fc", "pre")
    post = weights(model, "transformer.h.0.mlp.c_proj", "post")
    assert pre["down.weight"].shape == (4, 32) and post["down.weight"].shape == (4, 32)
    x, u = torch.randn(2, 3, 32), torch.randn(2, 3, 48)
    with torch.no_grad():
        torch.testing.assert_close(model.transformer.h[0].mlp.c_fc(x), (x + bottleneck(x, pre)) @ Wfc + bfc)
        h = u @ Wpr + bpr
        torch.testing.assert_close(model.transformer.h[0].mlp.c_proj(u), h + bottleneck(h, post))
    # the attention's c_proj is untouched
    assert not [k for k in adapter_parameters(model, "default") if ".attn." in k]


@pytest.mark.parametrize("how", [{"placement": ["attn.o:post"]}, {"target_modules": ["attn.o"]}])
def test_after_the_attention_output(how: dict) -> None:
    model = llama()
    with torch.no_grad():
        ref = model(input_ids=ids()).logits
    W = model.model.layers[1].self_attn.o_proj.weight.detach().clone()
    la.attach(model, {"type": "series", "bottleneck_size": 8, **how})
    keys = sorted(adapter_parameters(model, "default"))
    assert keys == [f"model.layers.{i}.self_attn.o_proj.post.{p}.weight" for i in (0, 1) for p in ("down", "up")]
    w = weights(model, "model.layers.1.self_attn.o_proj", "post")
    x = torch.randn(5, 32)
    with torch.no_grad():
        h = x @ W.T
        torch.testing.assert_close(model.model.layers[1].self_attn.o_proj(x), h + bottleneck(h, w))
        assert not torch.allclose(model(input_ids=ids()).logits, ref, atol=1e-4)


def test_whole_model_equals_hand_hooks_on_the_base_model() -> None:
    """AdapterP on every layer: the adapted model's logits equal the base model's with the formula hooked in."""
    adapted, base = llama(), llama()
    la.attach(adapted, {"type": "series", "bottleneck_size": 8, "variant": "adapterp", "non_linearity": "tanh"})
    handles = []
    for i, layer in enumerate(base.model.layers):
        w = weights(adapted, f"model.layers.{i}.mlp.down_proj", "post")
        handles.append(layer.mlp.down_proj.register_forward_hook(lambda m, a, y, w=w: y + bottleneck(y, w)))
    with torch.no_grad():
        torch.testing.assert_close(adapted(input_ids=ids()).logits, base(input_ids=ids()).logits)
    for handle in handles:
        handle.remove()
