"""Per-row adapters with the real adapter plugins mixed on shared modules: LoRA, DoRA, series (AdapterH and
AdapterP) and parallel, on LLaMA and GPT-2 tiny models; every row equals its adapter alone, in forward and in
greedy generation."""

from __future__ import annotations

import pytest
import torch

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.testing import tiny_model

pytestmark = pytest.mark.installed_plugins

ADAPTERS = {
    "lora": {"type": "lora", "r": 4, "dropout": 0.0, "target_modules": ["attn.q", "attn.v", "mlp.down"]},
    "dora": {"type": "lora", "r": 4, "dropout": 0.0, "use_dora": True, "target_modules": ["attn.v"]},
    "series": {"type": "series", "variant": "adapterp", "bottleneck_size": 8},
    "seriesh": {"type": "series", "variant": "adapterh", "bottleneck_size": 8},
    "parallel": {"type": "parallel", "bottleneck_size": 8, "target_modules": ["mlp.down", "attn.v"]},
}
ROWS = ["lora", "series", "__base__", "parallel", "dora", "seriesh"]


def mixed(family: str):  # type: ignore[no-untyped-def]
    model = tiny_model(family)
    g = torch.Generator().manual_seed(5)
    for name, config in ADAPTERS.items():
        la.attach(model, config, name=name)
        with torch.no_grad():
            for _, p in sorted(adapter_parameters(model, name).items()):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_rows_equal_each_adapter_alone_in_forward_and_generation(family: str) -> None:
    model = mixed(family)
    x = torch.randint(3, 100, (len(ROWS), 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(x)
    with torch.no_grad():
        routed = model(input_ids=x, attention_mask=mask, adapter_names=ROWS).logits
    generated = model.generate(
        input_ids=x, attention_mask=mask, adapter_names=ROWS, max_new_tokens=4, do_sample=False, pad_token_id=0
    )
    for row, name in enumerate(ROWS):
        with la.using(model, [] if name == "__base__" else [name]), torch.no_grad():
            alone = model(input_ids=x[row : row + 1], attention_mask=mask[row : row + 1]).logits
            torch.testing.assert_close(routed[row : row + 1], alone, atol=1e-5, rtol=0)
            one = model.generate(
                input_ids=x[row : row + 1], attention_mask=mask[row : row + 1], max_new_tokens=4, do_sample=False,
                pad_token_id=0,
            )  # fmt: skip
        n = one.shape[1]
        assert torch.equal(generated[row, :n], one[0]) and (generated[row, n:] == 0).all(), name
