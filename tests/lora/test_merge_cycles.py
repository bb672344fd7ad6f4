"""Merge cycles return the base tensors bit for bit, in float32, bfloat16 and float16, on LLaMA (separate
projections), GPT-2 (Conv1D, fused c_attn parts) and BLOOM (fused per-head q/k/v with biases), for LoRA and
DoRA; ``safe=True`` refuses non-finite results and changes nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterStateError
from llm_adapters.testing import tiny_model

pytestmark = pytest.mark.installed_plugins

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TARGETS = ["attn.q", "attn.v", "attn.o", "mlp.down"]


def adapted(family: str, dtype: torch.dtype, dora: bool) -> nn.Module:
    model = tiny_model(family).to(dtype)
    la.attach(model, {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "use_dora": dora, "target_modules": TARGETS})
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, "default").items()):
            p.add_(0.2 * torch.randn(p.shape, generator=g).to(p.dtype))
    return model


def base_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The base model's tensors under their own names (a wrapper's ``.base.`` taken out)."""
    return {
        k.replace(".base.", "."): v.detach().clone() for k, v in model.state_dict().items() if ".adapters." not in k
    }


def assert_bitwise(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    now = base_tensors(model)
    assert list(now) == list(before)
    changed = [k for k, v in before.items() if not torch.equal(now[k], v)]
    assert not changed, f"changed: {changed[:4]}"


@pytest.mark.parametrize("dora", [False, True], ids=["lora", "dora"])
@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
def test_merge_cycles_are_bit_exact(family: str, dtype: str, dora: bool) -> None:
    model = adapted(family, DTYPES[dtype], dora)
    before = base_tensors(model)
    ids = torch.randint(3, 100, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        unmerged = model(ids).logits.float()
        la.merge(model)
        merged = model(ids).logits.float()
    tol = 1e-4 if dtype == "float32" else 0.1
    torch.testing.assert_close(merged, unmerged, atol=tol, rtol=tol)
    assert any(not torch.equal(v, before[k]) for k, v in base_tensors(model).items())  # merged for real
    la.unmerge(model)  # merge -> unmerge
    assert_bitwise(model, before)
    la.merge(model)
    la.detach(model)  # merge -> detach
    keys = list(tiny_model(family).state_dict())
    assert list(model.state_dict()) == keys
    assert_bitwise(model, before)
    model = adapted(family, DTYPES[dtype], dora)
    la.merge(model)
    la.unmerge(model)
    la.detach(model)  # merge -> unmerge -> detach
    assert_bitwise(model, before)


@pytest.mark.parametrize("family", ["llama", "gpt2", "bloom"])
def test_safe_merge_refuses_non_finite_weights_and_changes_nothing(family: str) -> None:
    model = adapted(family, torch.float16, dora=False)
    with torch.no_grad():
        lora_b = next(p for k, p in sorted(adapter_parameters(model, "default").items()) if k.endswith("lora_B"))
        lora_b.fill_(1e6)  # fine in float32, but past float16's range (65504) once folded into the weight
    before = base_tensors(model)
    with pytest.raises(AdapterStateError, match=r"merging default gives non-finite weights .* nothing was merged"):
        la.merge(model, safe=True)
    assert_bitwise(model, before)
    assert not la.list_adapters(model)[0].merged
    la.merge(model)  # without the check the overflow goes through, as asked
    assert la.list_adapters(model)[0].merged
    la.unmerge(model)
    assert_bitwise(model, before)
