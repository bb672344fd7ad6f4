"""Prefix tuning, prompt tuning and P-tuning in HF PEFT's format: PEFT (a test-only dependency) loads what we save
with our logits, and we load what PEFT saves with PEFT's logits, on LLaMA-style (grouped-query), GPT-2 (absolute
positions) and BLOOM (ALiBi) tiny models; our own round trip is exact and keeps the encoders trainable."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.errors import AdapterFileError
from llm_adapters.testing import tiny_model

peft = pytest.importorskip("peft")

FAMILIES = ["llama", "gpt2", "bloom"]
NV = 4
#: our config -> what PEFT must make of it
OURS = {
    "prefix": {"type": "prefix", "num_virtual_tokens": NV, "positions": "after_prefix"},
    "prefix-projection": {
        "type": "prefix",
        "num_virtual_tokens": NV,
        "positions": "after_prefix",
        "prefix_projection": True,
        "encoder_hidden_size": 16,
    },
    "prompt": {"type": "prompt", "num_virtual_tokens": NV},
    "ptuning-mlp": {"type": "ptuning", "num_virtual_tokens": NV, "encoder_hidden_size": 16},
    "ptuning-lstm": {"type": "ptuning", "num_virtual_tokens": NV, "encoder": "lstm", "encoder_hidden_size": 8},
}


def _ids(shape: tuple[int, int] = (2, 7)) -> torch.Tensor:
    return torch.randint(0, 128, shape, generator=torch.Generator().manual_seed(0))


def _logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


def _randomise(model: nn.Module, seed: int = 1) -> None:
    """Small random values: N(0, 1) keys would drown the model's own and hide position mistakes."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(la.engine.adapter_parameters(model, "default").items()):
            p.copy_(0.3 * torch.randn(p.shape, generator=g))


def _ours(family: str, case: str) -> nn.Module:
    model = tiny_model(family)
    la.attach(model, OURS[case])
    _randomise(model)
    return model.eval()


def _peft_loaded(family: str, d: Path) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.PeftModel.from_pretrained(tiny_model(family), str(d)).eval()


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    """``a`` from PEFT, ``b`` ours: PEFT's prompt and P-tuning logits include the virtual positions (dropped)."""
    a = a[:, a.shape[1] - b.shape[1] :]
    assert a.shape == b.shape
    diff = float((a - b).abs().max())
    assert diff <= 1e-5, diff


@pytest.mark.parametrize("case", list(OURS))
@pytest.mark.parametrize("family", FAMILIES)
def test_peft_loads_what_we_save(family: str, case: str, tmp_path: Path) -> None:
    ours = _ours(family, case)
    la.save_adapter(ours, tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert (
        meta["peft_type"]
        == {"prefix": "PREFIX_TUNING", "prompt": "PROMPT_TUNING", "ptuning": "P_TUNING"}[OURS[case]["type"]]
    )
    ids = _ids()
    _close(_logits(_peft_loaded(family, tmp_path / "a"), ids), _logits(ours, ids))


def _peft_model(family: str, kind: str) -> nn.Module:
    configs = {
        "prefix": lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=NV),
        "prefix-projection": lambda: peft.PrefixTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=NV, prefix_projection=True, encoder_hidden_size=16
        ),
        "prompt": lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=NV),
        "ptuning": lambda: peft.PromptEncoderConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=NV, encoder_hidden_size=16
        ),
    }
    model = peft.get_peft_model(tiny_model(family), configs[kind]())
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("kind", ["prefix", "prefix-projection", "prompt", "ptuning"])
@pytest.mark.parametrize("family", FAMILIES)
def test_we_load_what_peft_saves(family: str, kind: str, tmp_path: Path) -> None:
    theirs = _peft_model(family, kind)
    theirs.save_pretrained(str(tmp_path / "p"))
    ids = _ids()
    expected = _logits(theirs, ids)
    model = la.load_adapter(tiny_model(family), tmp_path / "p").eval()
    [info] = la.list_adapters(model)
    # PEFT stores only a P-tuning encoder's output: it is a prompt-tuning table here
    assert info.type == {"prefix-projection": "prefix", "ptuning": "prompt"}.get(kind, kind)
    if info.type == "prefix":
        assert la.engine.state.adapter_config(model, info.name).positions == "after_prefix"
    _close(expected, _logits(model, ids))


@pytest.mark.parametrize("case", list(OURS))
def test_our_round_trip_is_exact_and_keeps_the_encoder(case: str, tmp_path: Path) -> None:
    ours = _ours("llama", case)
    la.save_adapter(ours, tmp_path / "a")
    has_encoder = OURS[case]["type"] == "ptuning" or OURS[case].get("prefix_projection", False)
    assert (tmp_path / "a" / "llm_adapters_extra.safetensors").is_file() == has_encoder
    back = la.load_adapter(tiny_model("llama"), tmp_path / "a").eval()
    assert la.engine.state.adapter_config(back, "default") == la.engine.state.adapter_config(ours, "default")
    mine, theirs = adapter_tensors(ours, "default"), adapter_tensors(back, "default")
    assert sorted(mine) == sorted(theirs)
    for k in mine:
        assert torch.equal(mine[k], theirs[k]), k
    ids = _ids()
    assert torch.equal(_logits(back, ids), _logits(ours, ids))


def test_a_moved_directory_without_the_encoder_file_is_refused(tmp_path: Path) -> None:
    la.save_adapter(_ours("llama", "ptuning-mlp"), tmp_path / "a")
    (tmp_path / "a" / "llm_adapters_extra.safetensors").unlink()
    model = tiny_model("llama")
    with pytest.raises(AdapterFileError, match=r"encoder \(llm_adapters_extra.safetensors\) is missing"):
        la.load_adapter(model, tmp_path / "a")
    assert not la.list_adapters(model)


def _both_conventions(family: str) -> tuple[nn.Module, nn.Module]:
    """One prefix, attached once with PEFT's convention and once with ours."""
    a = _ours(family, "prefix")
    b = tiny_model(family)
    la.attach(b, {**OURS["prefix"], "positions": "from_zero"})
    with torch.no_grad():
        for (_, p), (_, q) in zip(
            sorted(la.engine.adapter_parameters(a, "default").items()),
            sorted(la.engine.adapter_parameters(b, "default").items()),
            strict=True,
        ):
            q.copy_(p)
    return a, b.eval()


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_two_position_conventions_differ_where_positions_exist(family: str) -> None:
    """So the option matters, and the PEFT round trips above could fail if positions were wrong."""
    a, b = _both_conventions(family)
    ids = _ids()
    assert float((_logits(a, ids) - _logits(b, ids)).abs().max()) > 1e-3


@pytest.mark.parametrize(("family", "warns"), [("llama", True), ("gpt2", True), ("bloom", False)])
def test_saving_a_prefix_with_our_positions_warns_that_peft_differs(family: str, warns: bool, tmp_path: Path) -> None:
    _, ours = _both_conventions(family)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        la.save_adapter(ours, tmp_path / "a")
    said = [str(w.message) for w in caught if "PEFT-based tools" in str(w.message)]
    assert bool(said) == warns
    if warns:
        assert "Train with positions='after_prefix'" in said[0]
        theirs = _peft_loaded(family, tmp_path / "a")  # PEFT loads it, and computes something else
        ids = _ids()
        assert float((_logits(theirs, ids) - _logits(ours, ids)).abs().max()) > 1e-3
    back = la.load_adapter(tiny_model(family), tmp_path / "a").eval()
    assert torch.equal(_logits(back, _ids()), _logits(ours, _ids()))


def test_bloom_is_the_same_under_both_conventions() -> None:
    """ALiBi builds its biases from the extended mask: no positions to shift."""
    a, b = _both_conventions("bloom")
    ids = _ids()
    torch.testing.assert_close(_logits(a, ids), _logits(b, ids), atol=1e-6, rtol=0)


def _edit_config(d: Path, **changes: object) -> None:
    meta = json.loads((d / "adapter_config.json").read_text())
    meta.update(changes)
    (d / "adapter_config.json").write_text(json.dumps(meta))


BAD = {
    "fewer virtual tokens in the config": (
        "prefix",
        lambda d: _edit_config(d, num_virtual_tokens=NV - 1),
        r"prompt_embeddings has shape \(4, 64\), but a prefix of 3 virtual tokens on this model has shape \(3, 64\)",
    ),
    "another model's layers": (
        "prefix",
        lambda d: _edit_config(d, num_layers=5),
        r"made for 5 layers of key/value width 16; this model has 2 layers of 2 key/value heads x 8 = 16",
    ),
    "another hidden size": (
        "prompt",
        lambda d: _edit_config(d, token_dim=96),
        r"made for hidden size 96; this model's is 48",
    ),
    "encoder-decoder": (
        "prompt",
        lambda d: _edit_config(d, num_transformer_submodules=2),
        r"num_transformer_submodules=2 is an encoder-decoder adapter",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_peft_directories_are_refused_and_change_nothing(case: str, tmp_path: Path) -> None:
    kind, spoil, message = BAD[case]
    _peft_model("llama", kind).save_pretrained(str(tmp_path / "p"))
    spoil(tmp_path / "p")
    model = tiny_model("llama")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(AdapterFileError, match=message) as info:
        la.load_adapter(model, tmp_path / "p")
    assert "adapter_model.safetensors" in str(info.value)
    assert not la.list_adapters(model)
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
