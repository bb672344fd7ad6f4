"""The fusion's output against a hand-written computation on the tiny LLaMA's mlp.down outputs, and what
trains: only the fusion's Query, Key and Value."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.registry import model_families
from llm_adapters_fusion import FusionLayer
from llm_adapters_series import SeriesConfig, SeriesLayer

from .conftest import tiny_llama


def _ids() -> torch.Tensor:
    return torch.randint(3, 100, (2, 9), generator=torch.Generator().manual_seed(0))


def _logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def _series_layer(path: Path, module: str) -> SeriesLayer:
    """Adapter ``path``'s post layer on ``module``, built directly from its file."""
    import json

    cfg = json.loads((path / "llm_adapters_config.json").read_text())["config"]
    tensors = load_file(str(path / "adapter_model.safetensors"))
    d = model_families()["llama"].tiny_config["hidden_size"]
    layer = SeriesLayer(d, SeriesConfig.model_validate(cfg))
    prefix = f"{module}.post."
    layer.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    return layer.eval()


def _fusion_layers(model: nn.Module) -> dict[str, FusionLayer]:
    return {n.removesuffix(".adapters.default.post"): m for n, m in model.named_modules() if isinstance(m, FusionLayer)}


@pytest.mark.parametrize("residual_before", [False, True])
def test_logits_match_a_hand_written_fusion(adapter_dirs: dict[str, Path], residual_before: bool) -> None:
    paths = [adapter_dirs["p1"], adapter_dirs["p2"]]
    temperature = 0.7
    model = tiny_llama()
    la.attach(
        model,
        {
            "type": "fusion",
            "adapters": [str(p) for p in paths],
            "temperature": temperature,
            "residual_before": residual_before,
        },
    )
    torch.manual_seed(3)
    with torch.no_grad():
        for p in adapter_parameters(model, "default").values():
            p.normal_(0.0, 0.3)
    layers = _fusion_layers(model)
    assert sorted(layers) == [f"model.layers.{i}.mlp.down_proj" for i in range(2)]
    ids = _ids()
    got = _logits(model, ids)

    # by hand, on a clean base model: replace each mlp.down output h by the fusion of the two series outputs
    base = tiny_llama()
    hooks = []
    for module, fusion in layers.items():
        series = [_series_layer(p, module) for p in paths]
        wq, wk, wv = (fusion.query.weight.T, fusion.key.weight.T, fusion.value.weight.T)  # (d, d) each

        def hook(_m: nn.Module, _args: tuple, h: torch.Tensor, series=series, wq=wq, wk=wk, wv=wv) -> torch.Tensor:
            # h: (B, T, d); o_i: (B, T, d)
            outs = [s(h) for s in series]
            vals = outs if residual_before else [o - h for o in outs]
            q = h @ wq  # (B, T, d)
            scores = torch.stack([(q * (v @ wk)).sum(-1) for v in vals], dim=-1) / temperature  # (B, T, N)
            a = torch.softmax(scores, dim=-1)
            out = sum(a[..., i : i + 1] * (v @ wv) for i, v in enumerate(vals))  # (B, T, d)
            return out if residual_before else h + out

        hooks.append(base.get_submodule(module).register_forward_hook(hook))
    want = _logits(base, ids)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, _logits(base, ids), atol=1e-3)  # the fusion does change the model


def test_starts_near_the_mean_of_the_adapters(adapter_dirs: dict[str, Path]) -> None:
    """Query / Key N(0, 0.02), Value ~ identity: at the start the attention is close to uniform."""
    model = tiny_llama()
    la.attach(model, {"type": "fusion", "adapters": [str(adapter_dirs["p1"]), str(adapter_dirs["p2"])]})
    for fusion in _fusion_layers(model).values():
        v = fusion.value.weight
        torch.testing.assert_close(v, torch.eye(v.shape[0]), atol=1e-5, rtol=0)
        assert 0.01 < fusion.query.weight.std().item() < 0.03


def test_only_fusion_parameters_train(adapter_dirs: dict[str, Path]) -> None:
    model = tiny_llama()
    la.attach(model, {"type": "fusion", "adapters": [str(adapter_dirs["p1"]), str(adapter_dirs["p2"])]})
    model.train()
    ids = _ids()
    model(input_ids=ids, labels=ids).loss.backward()
    own = adapter_parameters(model, "default")
    assert sorted({k.rsplit(".", 2)[-2] for k in own}) == ["key", "query", "value"]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in own.values()}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in own.values())
    d = model.config.hidden_size
    assert la.trainable_parameters(model)[0] == 3 * d * d * model.config.num_hidden_layers
    assert la.list_adapters(model)[0].parameters == 3 * d * d * model.config.num_hidden_layers
    for fusion in _fusion_layers(model).values():
        assert len(fusion.fused) == 2
        for layer in fusion.fused:
            assert not layer.training  # frozen adapters stay in eval mode
            for p in layer.parameters():
                assert not p.requires_grad and p.grad is None
    # the fusion's file holds its Query, Key and Value only
    assert all(k.rsplit(".", 2)[-2] in ("query", "key", "value") for k in la.engine.adapter_tensors(model, "default"))


def test_parallel_adapters_fuse_to_the_mean_at_uniform_attention(adapter_dirs: dict[str, Path]) -> None:
    """Parallel adapters: parallel fusion layers; with Query = 0 (uniform attention) and Value = identity the
    module's output is y + mean_i delta_i(x)."""
    paths = [str(adapter_dirs["par1"]), str(adapter_dirs["par2"])]
    model = tiny_llama()
    la.attach(model, {"type": "fusion", "adapters": paths})
    layers = {
        n.removesuffix(".adapters.default.parallel"): m for n, m in model.named_modules() if isinstance(m, FusionLayer)
    }
    assert layers and all(m.kind == "parallel" for m in layers.values())
    with torch.no_grad():
        for m in layers.values():
            m.query.weight.zero_()
            m.value.weight.copy_(torch.eye(m.value.weight.shape[0]))
    ids = _ids()
    got = _logits(model, ids)
    base = tiny_llama()
    hooks = []
    for module, fusion in layers.items():

        def hook(_m: nn.Module, args: tuple, y: torch.Tensor, fused=fusion.fused) -> torch.Tensor:
            (x,) = args
            return y + sum(layer(x, y) for layer in fused) / len(fused)

        hooks.append(base.get_submodule(module).register_forward_hook(hook))
    want = _logits(base, ids)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
