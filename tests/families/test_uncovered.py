"""A model whose architecture no installed family covers: a clear error, and explicit module names still work."""

from __future__ import annotations

import pytest
import torch

import llm_adapters as la
from llm_adapters.errors import FamilyError
from llm_adapters.testing.models import tiny_model_from_config

from .helpers import EXPECTED_FAMILIES

TINY_MPT = {"model_type": "mpt", "d_model": 32, "n_heads": 4, "n_layers": 2, "vocab_size": 128, "max_seq_len": 64}


def test_uncovered_model_type_names_itself_the_families_and_the_ways_forward() -> None:
    model = tiny_model_from_config(TINY_MPT)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    installed = ", ".join(f"{name} ({', '.join(types)})" for name, types in sorted(EXPECTED_FAMILIES.items()))
    with pytest.raises(FamilyError) as caught:
        la.attach(model, {"type": "famprobe"})  # default placement: roles attn.q, attn.v
    assert str(caught.value) == (
        f"no installed model family covers model_type 'mpt' (installed families: {installed}). "
        "Either give explicit module names in target_modules (e.g. ['q_proj', 'v_proj']), which work "
        "without a family, or write a model-family plugin for it (see CONTRIBUTING.md, "
        "'Adding a model family')"
    )
    # the failed attach left the model as it was
    assert la.list_adapters(model) == []
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert "AdaptedModule" not in repr(model)


def test_explicit_module_names_work_without_a_family() -> None:
    model = tiny_model_from_config(TINY_MPT)
    ids = torch.randint(3, 128, (2, 5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model(input_ids=ids).logits
    la.attach(model, {"type": "famprobe", "target_modules": ["Wqkv", "ffn.down_proj"]})
    assert [a.sites for a in la.list_adapters(model)] == [4]
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1)
        adapted = model(input_ids=ids).logits
    assert not torch.allclose(adapted, base)
    out = model.generate(input_ids=ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert out.shape[1] > ids.shape[1]
