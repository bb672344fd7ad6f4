"""LoRA and DoRA on GPT-2's ``Conv1D`` (weights stored (in, out)) and on parts of fused q/k/v projections,
laid out as the family declares: contiguous (GPT-2 ``c_attn``) or interleaved per head (GPT-NeoX). The
reference model is built by editing the base weights by hand, through views written here, independent of
the core's index bookkeeping."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import TargetError
from llm_adapters.testing import tiny_model

from .helpers import logits, randomise, token_ids

PARTS = {"q": 0, "k": 1, "v": 2}


def _rows(model: nn.Module, family: str, path: str, part: str | None) -> torch.Tensor:
    """A view, in (out, in) layout, of the base weight rows that ``part`` of module ``path`` owns."""
    module = model.get_submodule(path)
    w = module.weight.t() if type(module).__name__ == "Conv1D" else module.weight  # (out, in) view
    if part is None:
        return w
    if family == "lora-test-gpt2":  # [q | k | v], each n_embd rows
        e = model.config.n_embd
        return w[PARTS[part] * e : (PARTS[part] + 1) * e]
    heads = model.config.num_attention_heads  # GPT-NeoX: rows viewed as (heads, 3, head_dim)
    return w.view(heads, 3, -1, w.shape[1])[:, PARTS[part]]  # (heads, head_dim, in)


def _hand_reference(model: nn.Module, base: nn.Module, family: str, scale: float, dora: bool) -> nn.Module:
    """``base`` with every adapted weight (or part) replaced by hand: W + s B A, or DoRA's m V / ||V||_c."""
    ref = copy.deepcopy(base)
    layers: dict[tuple[str, str | None], dict[str, torch.Tensor]] = {}
    for key, p in adapter_parameters(model, "default").items():
        path, slot, pname = key.rsplit(".", 2)
        part = slot.split("_", 1)[1] if "_" in slot else None
        layers.setdefault((path, part), {})[pname] = p.detach()
    with torch.no_grad():
        for (path, part), p in layers.items():
            rows = _rows(ref, family, path, part)
            w = rows.reshape(-1, rows.shape[-1])  # (d_out, d_in)
            v = w + scale * p["lora_B"] @ p["lora_A"]
            new = p["magnitude"][:, None] * v / v.norm(dim=1, keepdim=True) if dora else v
            rows.copy_(new.view(rows.shape))
    return ref


@pytest.mark.parametrize("family", ["lora-test-gpt2", "lora-test-neox"])
@pytest.mark.parametrize("preset", ["reference", "paper-best"])
@pytest.mark.parametrize("dora", [False, True])
def test_fused_parts_and_conv1d_match_hand_edited_weights(family: str, preset: str, dora: bool) -> None:
    model = tiny_model(family)
    base = copy.deepcopy(model)
    la.attach(model, {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "preset": preset, "use_dora": dora})
    randomise(model)
    ids = token_ids()
    ours = logits(model, ids)
    ref = _hand_reference(model, base, family, 2.0, dora)
    expected = logits(ref, ids)
    assert not torch.allclose(expected, logits(base, ids), atol=1e-3)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)
    # merging writes exactly the hand-edited weights, and unmerging restores the base
    la.merge(model)
    merged = {n.replace(".base.", "."): p for n, p in model.named_parameters() if ".adapters." not in n}
    for n, p in ref.named_parameters():
        torch.testing.assert_close(merged[n].detach(), p.detach(), atol=1e-6, rtol=1e-5, msg=n)
    la.unmerge(model)
    for n, p in base.named_parameters():
        torch.testing.assert_close(merged[n].detach(), p.detach(), atol=1e-6, rtol=0, msg=n)


def test_part_layers_have_the_part_size() -> None:
    model = tiny_model("lora-test-gpt2")
    la.attach(model, {"type": "lora", "r": 4})
    params = adapter_parameters(model, "default")
    e = model.config.n_embd
    assert sorted(k.split(".", 3)[3] for k in params if k.startswith("transformer.h.0.")) == [
        "attn.c_attn.parallel_q.lora_A",
        "attn.c_attn.parallel_q.lora_B",
        "attn.c_attn.parallel_v.lora_A",
        "attn.c_attn.parallel_v.lora_B",
    ]
    assert params["transformer.h.0.attn.c_attn.parallel_q.lora_A"].shape == (4, e)
    assert params["transformer.h.0.attn.c_attn.parallel_v.lora_B"].shape == (e, 4)


def test_whole_conv1d_by_module_name() -> None:
    model = tiny_model("lora-test-gpt2")
    base = copy.deepcopy(model)
    la.attach(model, {"type": "lora", "r": 2, "alpha": 2, "dropout": 0.0, "target_modules": ["c_attn"]})
    randomise(model)
    params = adapter_parameters(model, "default")
    assert params["transformer.h.1.attn.c_attn.parallel.lora_B"].shape == (3 * model.config.n_embd, 2)
    ref = _hand_reference(model, base, "lora-test-gpt2", 1.0, dora=False)
    torch.testing.assert_close(logits(model, token_ids()), logits(ref, token_ids()), atol=1e-5, rtol=1e-4)


def test_non_linear_target_is_refused() -> None:
    model = tiny_model("lora-test-gpt2")
    with pytest.raises(TargetError) as info:
        la.attach(model, {"type": "lora", "target_modules": ["h.0.ln_1"]})
    assert str(info.value) == (
        "adapter 'lora' cannot be placed on transformer.h.0.ln_1 (LayerNorm): "
        "transformer.h.0.ln_1 is not a Linear or Conv1D layer"
    )
    assert not la.list_adapters(model)
