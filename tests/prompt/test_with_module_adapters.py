"""Prompt-based adapters next to a module adapter (LoRA): switching, merging the module adapter, detaching."""

from __future__ import annotations

import pytest
import torch

from llm_adapters import attach, detach, merge, set_active, unmerge
from llm_adapters.engine import adapter_parameters
from llm_adapters.testing import tiny_model, use_plugins
from llm_adapters_prompt import plugin

from .helpers import FAMILY_MODULES, inputs, logits

lora = pytest.importorskip("llm_adapters_lora.plugin")


@pytest.mark.parametrize("kind", ["prefix", "prompt", "ptuning"])
def test_next_to_lora(kind: str) -> None:
    with use_plugins(plugin, lora, *FAMILY_MODULES):
        model = tiny_model("llama")
        ids = inputs(model)
        attach(model, {"type": kind, "num_virtual_tokens": 3}, name="soft")
        alone = logits(model, ids)
        attach(model, {"type": "lora", "r": 4, "dropout": 0.0}, name="lora")
        with torch.no_grad():
            for p in adapter_parameters(model, "lora").values():
                p.add_(0.05)
        both = logits(model, ids)
        assert not torch.allclose(both, alone, atol=1e-4)
        merge(model, "lora")
        torch.testing.assert_close(logits(model, ids), both, atol=1e-4, rtol=1e-4)
        unmerge(model, "lora")
        set_active(model, ["soft"])
        torch.testing.assert_close(logits(model, ids), alone, atol=1e-5, rtol=0)
        set_active(model, ["soft", "lora"])
        detach(model, "soft")
        with torch.no_grad():
            lora_only = model(input_ids=ids).logits
        assert lora_only.shape == both.shape and not torch.allclose(lora_only, both, atol=1e-4)
