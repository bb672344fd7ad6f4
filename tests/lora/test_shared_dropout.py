"""One dropout mask per input: the LoRA layers of one adapter on q, k and v of a block (and on the parts of a
fused projection) reuse the first one's masked input in a training forward, which computes exactly what
drawing the same mask for each would, with fewer draws."""

from __future__ import annotations

import pytest
import torch

import llm_adapters as la
from llm_adapters.testing import tiny_model
from llm_adapters_lora.dropout import BranchDropout
from llm_adapters_lora.layers import LoRALayer

pytestmark = pytest.mark.installed_plugins  # the real families: roles and fused parts as users get them

CASES = {
    # family, targets, masks per decoder layer with sharing (without: one per target)
    "llama q,k,v,o": ("llama", ["attn.q", "attn.k", "attn.v", "attn.o"], 2),
    "llama gate,up,down": ("llama", ["mlp.gate", "mlp.up", "mlp.down"], 2),
    "gpt2 parts q,v of c_attn": ("gpt2", ["attn.q", "attn.v"], 1),
}


def _value_mask(self: BranchDropout, x: torch.Tensor) -> torch.Tensor:
    """A mask that depends on the input only: drawing it again gives the same mask, so sharing must not change
    the output."""
    return (x * 1000).floor().remainder(3) != 0


@pytest.mark.parametrize("case", list(CASES))
def test_sharing_draws_fewer_masks_and_computes_the_same(case: str, monkeypatch) -> None:
    family, targets, per_layer = CASES[case]
    model = tiny_model(family)
    la.attach(model, {"type": "lora", "r": 4, "dropout": 0.3, "target_modules": targets})
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in la.engine.adapter_parameters(model, "default").values():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    model.train()
    calls = []
    monkeypatch.setattr(BranchDropout, "mask", lambda self, x: calls.append(1) or _value_mask(self, x))
    ids = torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(1))
    shared = model(input_ids=ids).logits
    layers = model.config.num_hidden_layers if hasattr(model.config, "num_hidden_layers") else model.config.n_layer
    assert len(calls) == per_layer * layers
    lora_layers = [m for m in model.modules() if isinstance(m, LoRALayer)]
    for m in lora_layers:
        m.shared_dropout = None
    calls.clear()
    alone = model(input_ids=ids).logits
    assert len(calls) == len(lora_layers)
    torch.testing.assert_close(shared, alone, atol=1e-6, rtol=0)
    assert not torch.equal(shared, model.eval()(input_ids=ids).logits)  # dropout did act


def test_eval_mode_draws_nothing(monkeypatch) -> None:
    model = tiny_model("llama")
    la.attach(model, {"type": "lora", "r": 4, "dropout": 0.3, "target_modules": ["attn.q", "attn.k", "attn.v"]})
    model.eval()
    monkeypatch.setattr(BranchDropout, "mask", lambda self, x: pytest.fail("a mask was drawn in eval mode"))
    model(input_ids=torch.tensor([[1, 2, 3]]))


def test_gradients_reach_every_branch_through_a_shared_mask() -> None:
    model = tiny_model("llama")
    la.attach(model, {"type": "lora", "r": 4, "dropout": 0.3, "target_modules": ["attn.q", "attn.k", "attn.v"]})
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in la.engine.adapter_parameters(model, "default").values():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    model.train()
    model(input_ids=torch.tensor([[1, 2, 3, 4]]), labels=torch.tensor([[1, 2, 3, 4]])).loss.backward()
    grads = {k: p.grad for k, p in la.engine.adapter_parameters(model, "default").items()}
    assert grads and all(v is not None and v.abs().sum() > 0 for v in grads.values())
