"""One dropout mask per input: the LoRA layers of one adapter on q, k and v of a block (and on the parts of a
fused projection) reuse the first one's masked input in a training forward, which computes exactly what
drawing the same mask for each would, with fewer draws."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

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
    """A keep-mask that depends on the input's shape only: drawing it again gives the same mask, so sharing must
    not change the output (beyond the rounding of one product in place of several)."""
    return (torch.arange(x.numel()).remainder(3) != 0).to(x.dtype).view(x.shape)


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
        m.shared_input = None
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


class _CountProducts(TorchDispatchMode):
    """Counts the matrix products (mm, addmm, bmm) dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.products = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.bmm):
            self.products += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_one_down_product_per_input_with_the_same_values_and_gradients(dropout: float, monkeypatch) -> None:
    # q, k, v of each block (3 members) and gate, up (2 members): k - 1 fewer products per group and input,
    # forward; the outputs and every gradient are those of computing each layer alone
    targets = ["attn.q", "attn.k", "attn.v", "mlp.gate", "mlp.up"]
    model = tiny_model("llama")
    la.attach(model, {"type": "lora", "r": 4, "dropout": dropout, "target_modules": targets})
    g = torch.Generator().manual_seed(0)
    params = la.engine.adapter_parameters(model, "default")
    with torch.no_grad():
        for p in params.values():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    model.train()
    monkeypatch.setattr(BranchDropout, "mask", _value_mask)  # the same mask drawn alone or shared
    ids = torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(1))
    lora_layers = [m for m in model.modules() if isinstance(m, LoRALayer)]
    groups = {id(m.shared_input): m.shared_input for m in lora_layers}
    assert sorted(len(grp.members) for grp in groups.values()) == sorted([2, 3] * model.config.num_hidden_layers)

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        counter = _CountProducts()
        with counter:
            loss = model(input_ids=ids, labels=ids).loss
        model.zero_grad(set_to_none=True)
        loss.backward()
        return loss.detach(), {k: p.grad.clone() for k, p in params.items()}, counter.products

    shared_loss, shared_grads, shared_products = run()
    for m in lora_layers:
        m.shared_input = None
    alone_loss, alone_grads, alone_products = run()
    assert alone_products - shared_products == (3 - 1 + 2 - 1) * model.config.num_hidden_layers
    torch.testing.assert_close(shared_loss, alone_loss, atol=1e-6, rtol=1e-6)
    assert shared_grads.keys() == alone_grads.keys()
    for key in alone_grads:
        torch.testing.assert_close(shared_grads[key], alone_grads[key], atol=1e-6, rtol=1e-5, msg=key)


def test_each_adapter_groups_its_own_layers() -> None:
    # two adapters on the same modules: neither takes a part of the other's product
    model = tiny_model("llama")
    for name in ("a", "b"):
        la.attach(model, {"type": "lora", "r": 4, "target_modules": ["attn.q", "attn.k"]}, name=name)
    by_adapter: dict[str, set[int]] = {}
    for module in model.modules():
        for name, slots in getattr(module, "adapters", {}).items():
            for layer in slots.values():
                by_adapter.setdefault(name, set()).update(id(m) for m in layer.shared_input.members)
    assert by_adapter["a"] and by_adapter["b"] and not by_adapter["a"] & by_adapter["b"]


def test_a_row_subset_or_an_inference_tensor_is_computed_alone() -> None:
    model = tiny_model("llama")
    la.attach(model, {"type": "lora", "r": 4, "target_modules": ["attn.q", "attn.k"]})
    q = next(m for m in model.modules() if isinstance(m, LoRALayer))
    group, d = q.shared_input, q.lora_A.shape[1]
    with torch.inference_mode():
        x = torch.randn(3, d)
        h, factor = group.down(q, x)
        torch.testing.assert_close(h, x @ q.lora_A.T)
        assert group._x is None  # nothing held: no version counter to recognise the input by
    x = torch.randn(3, d)
    h, _ = group.down(q, x)
    assert group._x is x
    h2, _ = group.down(q, x[:2])  # another tensor: a fresh entry
    torch.testing.assert_close(h2, x[:2] @ q.lora_A.T)
    assert group._x is not x
