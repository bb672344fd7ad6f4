"""Adapters chosen per row (``adapter_names``, PEFT's convention) and temporary switching (``using``,
``disabled``): every row gets exactly what its adapter alone gives, in forward and in greedy generation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterStateError
from llm_adapters.testing import tiny_model_from_config

from .probe_plugin import TINY_GPT2, TINY_LLAMA

MIX = {  # three adapters of every kind, sharing modules
    "a": {"type": "probe", "target_modules": ["attn.q", "attn.v"]},
    "b": {"type": "probe", "kind": "post", "target_modules": ["attn.v", "mlp.down"]},
    "c": {"type": "probe", "kind": "pre", "target_modules": ["mlp.down"]},
}


def mixed(tiny: dict) -> nn.Module:
    model = tiny_model_from_config(tiny)
    g = torch.Generator().manual_seed(11)
    for name, config in MIX.items():
        la.attach(model, config, name=name)
        with torch.no_grad():
            for _, p in sorted(adapter_parameters(model, name).items()):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def ids(rows: int = 4) -> torch.Tensor:
    return torch.randint(3, 120, (rows, 6), generator=torch.Generator().manual_seed(0))


ROWS = ["a", "b", "__base__", "c"]


@pytest.mark.parametrize("tiny", [TINY_LLAMA, TINY_GPT2], ids=["llama", "gpt2"])
def test_each_row_gets_exactly_its_adapter(tiny: dict) -> None:
    model = mixed(tiny)
    x = ids()
    with torch.no_grad():
        routed = model(input_ids=x, adapter_names=ROWS).logits
        for row, name in enumerate(ROWS):
            with la.using(model, [] if name == "__base__" else [name]):
                alone = model(input_ids=x[row : row + 1]).logits
            torch.testing.assert_close(routed[row : row + 1], alone, atol=1e-5, rtol=0)
        # the next call without adapter_names uses the active set again (all three)
        assert not torch.allclose(model(input_ids=x).logits[2], routed[2], atol=1e-4)


@pytest.mark.parametrize("tiny", [TINY_LLAMA, TINY_GPT2], ids=["llama", "gpt2"])
def test_greedy_generation_per_row_equals_each_adapter_alone(tiny: dict) -> None:
    model = mixed(tiny)
    x = ids()
    mask = torch.ones_like(x)
    common = dict(max_new_tokens=5, do_sample=False, pad_token_id=0)
    routed = model.generate(input_ids=x, attention_mask=mask, adapter_names=ROWS, **common)
    for row, name in enumerate(ROWS):
        with la.using(model, [] if name == "__base__" else [name]):
            alone = model.generate(input_ids=x[row : row + 1], attention_mask=mask[row : row + 1], **common)
        n = alone.shape[1]  # a row that met EOS early is padded in the batch
        assert torch.equal(routed[row, :n], alone[0]), name
        assert (routed[row, n:] == 0).all(), name


def test_bad_routes_are_clear_errors_and_never_silence() -> None:
    model = mixed(TINY_LLAMA)
    x = ids()
    with pytest.raises(AdapterStateError, match=r"adapter_names: no adapter named 'zz' \(attached: a, b, c\)"):
        model(input_ids=x, adapter_names=["a", "zz", "b", "c"])
    with pytest.raises(AdapterStateError, match=r"adapter_names has 3 name\(s\) but the batch has 4 row\(s\)"):
        model(input_ids=x, adapter_names=["a", "b", "c"])
    with pytest.raises(AdapterStateError, match=r"adapter_names must be a list of adapter names"):
        model(input_ids=x, adapter_names="a")
    la.set_active(model, ["a"])
    la.merge(model, "a")
    with pytest.raises(AdapterStateError, match=r"adapter\(s\) a are merged into the base weights"):
        model(input_ids=x, adapter_names=ROWS)


def test_a_prompt_based_adapter_cannot_be_chosen_per_row() -> None:
    import llm_adapters_prompt.plugin as prompt_plugin
    from llm_adapters.testing import use_plugins

    from . import probe_plugin

    with use_plugins(probe_plugin, prompt_plugin):
        model = tiny_model_from_config(TINY_LLAMA)
        la.attach(model, {"type": "probe"}, name="a")
        la.attach(model, {"type": "prompt", "num_virtual_tokens": 2}, name="p")
        with pytest.raises(AdapterStateError, match=r"prompt-based adapter\(s\) p change the whole batch's inputs"):
            model(input_ids=ids(2), adapter_names=["a", "__base__"])


def test_using_and_disabled_restore_the_state_even_when_the_body_raises() -> None:
    model = mixed(TINY_LLAMA)
    x = ids(2)
    base = tiny_model_from_config(TINY_LLAMA)
    with torch.no_grad():
        everything = model(input_ids=x).logits
        with la.disabled(model):
            torch.testing.assert_close(model(input_ids=x).logits, base(input_ids=x).logits, atol=0, rtol=0)
        torch.testing.assert_close(model(input_ids=x).logits, everything, atol=0, rtol=0)
        la.set_active(model, ["a"])
        la.merge(model, "a")
        merged_weight = model.model.layers[0].self_attn.q_proj.base.weight.clone()
        with pytest.raises(RuntimeError, match="boom"), la.using(model, ["b"]):
            assert [a.name for a in la.list_adapters(model) if a.active] == ["b"]
            assert not la.list_adapters(model)[0].merged  # 'a' left out: unmerged for the block
            raise RuntimeError("boom")
        info = {a.name: (a.active, a.merged) for a in la.list_adapters(model)}
        assert info == {"a": (True, True), "b": (False, False), "c": (False, False)}
        assert torch.equal(model.model.layers[0].self_attn.q_proj.base.weight, merged_weight)
