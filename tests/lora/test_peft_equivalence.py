"""Given the same weights, our LoRA, rsLoRA and DoRA give the logits, gradients and merged weights of
HF PEFT (a test-only dependency), on a LLaMA-style model and on GPT-2's ``Conv1D``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.testing import tiny_model

from .helpers import logits, randomise, token_ids

peft = pytest.importorskip("peft")

LLAMA_BEST = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
VARIANTS = {
    "lora": {},
    "rslora": {"use_rslora": True},
    "dora": {"use_dora": True},
    "rslora+dora": {"use_rslora": True, "use_dora": True},
}
PEFT_NAMES = {"lora_A": "lora_A", "lora_B": "lora_B", "magnitude": "lora_magnitude_vector"}


def _pair(family: str, ours_targets: dict, peft_targets: list[str], variant: str) -> tuple[nn.Module, nn.Module]:
    """Our adapted model and PEFT's, from one base, holding the same random adapter weights."""
    base = tiny_model(family)
    extra = VARIANTS[variant]
    ours = copy.deepcopy(base)
    la.attach(ours, {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0, **ours_targets, **extra})
    randomise(ours)
    cfg = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=peft_targets,
        fan_in_fan_out=family == "lora-test-gpt2",
        use_rslora=extra.get("use_rslora", False),
        use_dora=extra.get("use_dora", False),
    )
    theirs = peft.get_peft_model(copy.deepcopy(base), cfg)
    inner = theirs.base_model.model
    copied = 0
    with torch.no_grad():
        for key, p in adapter_parameters(ours, "default").items():
            path, slot, pname = key.rsplit(".", 2)
            assert slot == "parallel"
            getattr(inner.get_submodule(path), PEFT_NAMES[pname])["default"].weight.copy_(p)
            copied += p.numel()
    assert copied == sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    return ours, theirs


CASES = [
    ("lora-test-llama", {"target_modules": ["q_proj", "v_proj"]}, ["q_proj", "v_proj"]),
    ("lora-test-llama", {"preset": "paper-best"}, LLAMA_BEST),
    ("lora-test-gpt2", {"target_modules": ["c_attn", "c_fc"]}, ["c_attn", "c_fc"]),
]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(("family", "ours_targets", "peft_targets"), CASES)
def test_same_logits_and_gradients_as_peft(
    family: str, ours_targets: dict, peft_targets: list[str], variant: str
) -> None:
    ours, theirs = _pair(family, ours_targets, peft_targets, variant)
    ids = token_ids()
    expected = logits(theirs, ids)
    assert not torch.allclose(expected, logits(tiny_model(family), ids), atol=1e-3)
    torch.testing.assert_close(logits(ours, ids), expected, atol=1e-5, rtol=1e-4)

    for model in (ours, theirs):
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
    inner = theirs.base_model.model
    for key, p in adapter_parameters(ours, "default").items():
        path, _, pname = key.rsplit(".", 2)
        their_grad = getattr(inner.get_submodule(path), PEFT_NAMES[pname])["default"].weight.grad
        torch.testing.assert_close(p.grad, their_grad, atol=1e-6, rtol=1e-4, msg=key)


@pytest.mark.parametrize("variant", ["lora", "dora"])
def test_same_merged_weights_as_peft(variant: str) -> None:
    ours, theirs = _pair("lora-test-gpt2", {"target_modules": ["c_attn", "c_fc"]}, ["c_attn", "c_fc"], variant)
    la.merge(ours, unload=True)
    merged = theirs.merge_and_unload()
    theirs_sd = merged.state_dict()
    for name, tensor in ours.state_dict().items():
        torch.testing.assert_close(tensor, theirs_sd[name], atol=1e-6, rtol=1e-5, msg=name)
