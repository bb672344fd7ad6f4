"""One parametrized test over every family: adapters attach by role, train a step, save, load and generate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import llm_adapters as la
from llm_adapters import model_families
from llm_adapters.engine import adapter_parameters
from llm_adapters.testing import tiny_model

from .helpers import EXPECTED_FAMILIES

LINEAR_ROLES = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.up", "mlp.down")


@pytest.mark.parametrize("name", sorted(EXPECTED_FAMILIES))
def test_attach_by_role_train_save_load_generate(name: str, tmp_path: Path) -> None:
    family = model_families()[name]
    model = tiny_model(family)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    roles = [r for r in LINEAR_ROLES if family.resolves(r)]
    # three adapters, one per kind, all placed by role only
    la.attach(model, {"type": "famprobe", "rank": 2, "target_modules": roles}, name="par")
    la.attach(model, {"type": "famprobe", "rank": 2, "kind": "pre", "target_modules": ["mlp.up"]}, name="pre")
    la.attach(model, {"type": "famprobe", "rank": 2, "kind": "post", "target_modules": ["mlp.down"]}, name="post")
    layers = family.dims(model.config).num_layers
    assert [(a.name, a.sites) for a in la.list_adapters(model)] == [
        ("par", layers * len(roles)),
        ("pre", layers),
        ("post", layers),
    ]

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (2, 8), generator=g)
    mask = torch.ones_like(ids)
    trainable = [p for p in model.parameters() if p.requires_grad]
    own = {id(p) for n in ("par", "pre", "post") for p in adapter_parameters(model, n).values()}
    assert trainable and {id(p) for p in trainable} == own
    optimizer = torch.optim.SGD(trainable, lr=0.05)
    model.train()
    loss_before = model(input_ids=ids, attention_mask=mask, labels=ids).loss
    loss_before.backward()
    optimizer.step()
    optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        loss_after = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        trained_logits = model(input_ids=ids, attention_mask=mask).logits
    assert loss_after < loss_before.detach()
    generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    for n in ("par", "pre", "post"):
        la.save_adapter(model, tmp_path / n, name=n)

    # a fresh model loads all three (under other names) and computes the same outputs
    fresh = tiny_model(family)
    for n in ("par", "pre", "post"):
        la.load_adapter(fresh, tmp_path / n, name=f"loaded_{n}")
    with torch.no_grad():
        torch.testing.assert_close(fresh(input_ids=ids, attention_mask=mask).logits, trained_logits, atol=1e-6, rtol=0)
    # generation runs with the adapters, and the reloaded model generates the same tokens
    assert generated.shape[0] == 2 and ids.shape[1] < generated.shape[1] <= ids.shape[1] + 4
    assert torch.equal(generated[:, : ids.shape[1]], ids)
    out = fresh.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert torch.equal(out, generated)

    # training moved only the adapters: once they are detached, the base weights are as they were
    la.detach(model)
    assert model.state_dict().keys() == base.keys()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, base[k], atol=0, rtol=0)
