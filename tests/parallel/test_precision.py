"""Half-precision bases: adapter layers stay float32, module outputs keep the activations' dtype, and the
learned scale never promotes half-precision activations (a defect of the reference)."""

from __future__ import annotations

import pytest
import torch

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.engine.wrapper import AdaptedModule
from llm_adapters_parallel import ParallelConfig, ParallelLayer
from tests.tiny_models import ids, llama

CONFIG = {"type": "parallel", "bottleneck_size": 8, "scaling": "learned", "preset": "paper-best"}


def output_dtypes(model: torch.nn.Module) -> set[torch.dtype]:
    """Run the model once and collect the dtypes of every adapted module's output."""
    seen: set[torch.dtype] = set()
    hooks = [
        m.register_forward_hook(lambda _m, _a, y: seen.add(y.dtype))
        for m in model.modules()
        if isinstance(m, AdaptedModule)
    ]
    with torch.no_grad():
        model(input_ids=ids())
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float16, 5e-3), (torch.bfloat16, 3e-2)])
def test_half_precision_base_with_a_learned_scale(dtype: torch.dtype, atol: float) -> None:
    model = la.attach(llama(dtype=dtype), dict(CONFIG))
    params = adapter_parameters(model, "default")
    with torch.no_grad():
        for k, p in params.items():
            if k.endswith(".scale"):
                p.fill_(1.5)
    assert {p.dtype for p in params.values()} == {torch.float32}
    assert output_dtypes(model) == {dtype}
    with torch.no_grad():
        logits = model(input_ids=ids()).logits
    assert logits.dtype == dtype
    ref = la.attach(llama(dtype=dtype).float(), dict(CONFIG))  # the same weights, float32 throughout
    with torch.no_grad():
        for k, p in adapter_parameters(ref, "default").items():
            p.copy_(params[k])
        expected = ref(input_ids=ids()).logits
    torch.testing.assert_close(logits.float(), expected, atol=atol, rtol=0)


def test_training_step_on_a_half_precision_base() -> None:
    model = la.attach(llama(dtype=torch.float16), dict(CONFIG))
    model.train()
    model(input_ids=ids(), labels=ids()).loss.backward()
    scales = [p for k, p in adapter_parameters(model, "default").items() if k.endswith(".scale")]
    assert len(scales) == 4 and all(p.grad is not None and p.grad.dtype == torch.float32 for p in scales)


def test_learned_scale_does_not_promote_under_autocast() -> None:
    layer = ParallelLayer(16, 24, ParallelConfig(bottleneck_size=4, scaling="learned"))
    x = torch.randn(2, 16).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert layer.scale.dtype == torch.float32 and out.dtype == torch.bfloat16 and out.shape == (2, 24)
