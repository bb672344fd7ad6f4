"""LoRA adapters are saved in HF PEFT's own format: PEFT (a test-only dependency) and transformers load what we
write with our logits, and we load what PEFT writes with PEFT's logits, on LLaMA-style, GPT-2 (``Conv1D``,
contiguous fused q/k/v) and BLOOM (per-head interleaved fused q/k/v) tiny models, with the real families."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.engine.state import adapter_config
from llm_adapters.errors import AdapterFileError
from llm_adapters.files import _base_info
from llm_adapters.testing import tiny_model

from .helpers import logits, randomise, token_ids

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.installed_plugins

VARIANTS = {"lora": {}, "rslora": {"use_rslora": True}, "dora": {"use_dora": True}}
#: family -> (our targets, PEFT's targets for the same modules)
TARGETS = {
    "llama": (["attn.q", "attn.v"], ["q_proj", "v_proj"]),
    "gpt2": (["attn.q", "attn.v", "c_fc"], ["c_attn", "c_fc"]),  # parts of the fused c_attn, and a whole Conv1D
    "bloom": (["attn.q", "attn.v"], ["query_key_value"]),  # parts of the per-head interleaved fused projection
}
MAX_DIFF: dict[str, float] = {}


def _ours(family: str, variant: str, seed: int = 1) -> nn.Module:
    model = tiny_model(family)
    cfg = {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": TARGETS[family][0]}
    la.attach(model, {**cfg, **VARIANTS[variant]})
    randomise(model, seed=seed)
    return model.eval()


def _peft_model(family: str, variant: str) -> nn.Module:
    cfg = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=TARGETS[family][1],
        fan_in_fan_out=family == "gpt2",
        **VARIANTS[variant],
    )
    model = peft.get_peft_model(tiny_model(family), cfg)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                noise = torch.randn(p.shape, generator=g)
                p.copy_(p * (1 + 0.2 * noise.tanh()) if "magnitude" in name else 0.1 * noise)
    return model.eval()


def _check(a: torch.Tensor, b: torch.Tensor, case: str) -> None:
    diff = float((a - b).abs().max())
    MAX_DIFF[case] = diff
    print(f"max |logit diff| {case}: {diff:.3g}")
    assert diff <= 1e-5, case


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert list(after) == list(before)
    for k, v in before.items():
        assert torch.equal(after[k], v), k


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("family", list(TARGETS))
def test_peft_loads_what_we_save(family: str, variant: str, tmp_path: Path) -> None:
    ours = _ours(family, variant)
    ids = token_ids()
    expected = logits(ours, ids)
    assert not torch.allclose(expected, logits(tiny_model(family), ids), atol=1e-3)
    la.save_adapter(ours, tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert meta["peft_type"] == "LORA" and meta["llm_adapters"]["adapter_type"] == "lora"
    if family != "llama":  # q and v parts of the fused projection: one PEFT LoRA of rank 2 r, the same scale
        assert set(meta["rank_pattern"].values()) == {8}
        assert set(meta["alpha_pattern"].values()) == {8 * 2**0.5 if variant == "rslora" else 16}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PEFT warns about the unknown key "llm_adapters"
        theirs = peft.PeftModel.from_pretrained(tiny_model(family), str(tmp_path / "a")).eval()
    _check(logits(theirs, ids), expected, f"ours->peft {family} {variant}")
    # transformers 5.x' load_adapter does not load DoRA magnitudes (not even from a directory PEFT wrote: its
    # key lora_magnitude_vector lacks the ".weight" transformers looks for), so DoRA is checked through PEFT only
    if family == "llama" and variant != "dora":
        base = tiny_model(family)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base.load_adapter(str(tmp_path / "a"))
        _check(logits(base.eval(), ids), expected, f"ours->transformers {family} {variant}")


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("family", list(TARGETS))
def test_we_load_what_peft_saves(family: str, variant: str, tmp_path: Path) -> None:
    theirs = _peft_model(family, variant)
    ids = token_ids()
    expected = logits(theirs, ids)
    theirs.save_pretrained(str(tmp_path / "p"))
    model = la.load_adapter(tiny_model(family), tmp_path / "p").eval()
    _check(logits(model, ids), expected, f"peft->ours {family} {variant}")
    # and it saves back in PEFT's format, which PEFT reads with the same logits
    la.save_adapter(model, tmp_path / "again")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = peft.PeftModel.from_pretrained(tiny_model(family), str(tmp_path / "again")).eval()
    _check(logits(back, ids), expected, f"peft->ours->peft {family} {variant}")


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("family", list(TARGETS))
def test_our_round_trip_is_exact(family: str, variant: str, tmp_path: Path) -> None:
    ours = _ours(family, variant)
    la.save_adapter(ours, tmp_path / "a")
    model = tiny_model(family)
    la.load_adapter(model, tmp_path / "a", name="other")
    assert adapter_config(model, "other") == adapter_config(ours, "default")
    mine, theirs = adapter_tensors(ours, "default"), adapter_tensors(model, "other")
    assert list(mine) == list(theirs)
    for k in mine:
        assert torch.equal(mine[k], theirs[k]), k
    ids = token_ids()
    assert torch.equal(logits(model.eval(), ids), logits(ours, ids))
    # a training checkpoint in this layout loads into the attached adapter too
    fresh = _ours(family, variant, seed=7)
    la.files.load_adapter_weights(fresh, tmp_path / "a", "default")
    assert torch.equal(logits(fresh, ids), logits(ours, ids))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_the_previous_format_still_loads(family: str, tmp_path: Path) -> None:
    ours = _ours(family, "dora")
    d = tmp_path / "old"
    d.mkdir()
    rec = la.engine.state._state(ours).records["default"]
    meta = {
        "format_version": 1,
        "adapter_type": "lora",
        "config": rec.config.model_dump(mode="json"),
        "plugin": {"name": "llm-adapters-lora", "version": "0.1.0"},
        "core_version": la.__version__,
        "base_model": _base_info(ours),
        "targets": [{"module": s.module_path, "kind": s.kind, "part": s.part, "role": s.role} for s in rec.sites],
    }
    (d / "adapter_config.json").write_text(json.dumps(meta))
    save_file(
        {k: v.contiguous() for k, v in adapter_tensors(ours, "default").items()}, str(d / "adapter_model.safetensors")
    )
    model = la.load_adapter(tiny_model(family), d)
    ids = token_ids()
    assert torch.equal(logits(model.eval(), ids), logits(ours, ids))


def _peft_dir(tmp_path: Path, family: str = "llama", variant: str = "lora") -> Path:
    d = tmp_path / "p"
    _peft_model(family, variant).save_pretrained(str(d))
    return d


def _edit_tensors(d: Path, edit) -> None:
    tensors = load_file(str(d / "adapter_model.safetensors"))
    edit(tensors)
    save_file(tensors, str(d / "adapter_model.safetensors"))


def _edit_config(d: Path, **changes) -> None:
    meta = json.loads((d / "adapter_config.json").read_text())
    meta.update(changes)
    (d / "adapter_config.json").write_text(json.dumps(meta))


KEY = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
BAD = {
    "missing tensor": (lambda d: _edit_tensors(d, lambda t: t.pop(KEY)), r"missing key.*layers\.0\.self_attn\.q_proj"),
    "extra tensor": (
        lambda d: _edit_tensors(d, lambda t: t.update({"base_model.model.extra.lora_A.weight": torch.zeros(2, 2)})),
        r"unexpected key.*base_model\.model\.extra",
    ),
    "rank mismatch": (lambda d: _edit_config(d, r=8), r"shape mismatch.*file \(4, 48\) vs model \(8, 48\)"),
    "unknown peft_type": (
        lambda d: _edit_config(d, peft_type="VERA"),
        r"no installed adapter plugin reads PEFT type 'VERA' \(installed types read: LORA \(lora\).*\); no "
        r"llm-adapters distribution reads it yet",
    ),
    "different patterns": (
        lambda d: _edit_config(d, rank_pattern={"v_proj": 2}),
        r"different ranks or alphas per module",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_peft_directories_are_refused_and_change_nothing(case: str, tmp_path: Path) -> None:
    d = _peft_dir(tmp_path)
    spoil, message = BAD[case]
    spoil(d)
    model = tiny_model("llama")
    la.attach(model, {"type": "lora", "r": 2, "target_modules": ["o_proj"]}, name="kept")
    before = _snapshot(model)
    with pytest.raises(AdapterFileError, match=message) as info:
        la.load_adapter(model, d)
    assert str(d) in str(info.value)
    _assert_unchanged(model, before)
    assert [a.name for a in la.list_adapters(model)] == ["kept"]


def test_a_known_peft_type_without_its_plugin_names_the_package(tmp_path: Path, monkeypatch) -> None:
    from llm_adapters.testing import use_plugins

    d = _peft_dir(tmp_path)
    monkeypatch.setenv("LLM_ADAPTERS_DISABLE_PLUGINS", "lora")
    with use_plugins(entry_points=True):
        with pytest.raises(AdapterFileError, match=r"PEFT type 'LORA' .*; install llm-adapters-lora, which reads it"):
            la.load_adapter(tiny_model("llama"), d)


def test_a_peft_directory_for_another_base_is_refused(tmp_path: Path) -> None:
    d = _peft_dir(tmp_path)
    _edit_config(d, base_model_name_or_path="some-org/other-model")
    other = tiny_model("llama")
    other = type(other)(copy.deepcopy(other.config).__class__(**{**other.config.to_dict(), "hidden_size": 96}))
    before = _snapshot(other)
    with pytest.raises(AdapterFileError, match=r"shape mismatch.*'some-org/other-model'") as info:
        la.load_adapter(other, d)
    assert "adapter_model.safetensors" in str(info.value)
    _assert_unchanged(other, before)
    assert not la.list_adapters(other)


def test_export_converts_a_previous_format_directory_to_peft(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from peft import PeftModel

    from llm_adapters.testing import tiny_tokenizer
    from llm_adapters_train.cli_export import command

    test_the_previous_format_still_loads("llama", tmp_path)  # writes tmp_path / "old" in the format of before
    tiny_model("llama").save_pretrained(tmp_path / "base")
    tiny_tokenizer().save_pretrained(tmp_path / "base")
    args = ["--model", str(tmp_path / "base"), "--adapter-path", str(tmp_path / "old"), "--format", "peft"]
    result = CliRunner().invoke(command, [*args, "--output", str(tmp_path / "peft")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["peft_type"] == "LORA"
    ours = _ours("llama", "dora")
    peft_model = PeftModel.from_pretrained(tiny_model("llama"), str(tmp_path / "peft")).eval()
    ids = token_ids()
    torch.testing.assert_close(logits(peft_model, ids), logits(ours, ids), atol=1e-5, rtol=0)
    again = CliRunner().invoke(
        command, [*args, "--adapter-path", str(tmp_path / "old"), "--output", str(tmp_path / "x")]
    )
    assert again.exit_code == 2 and "--format peft converts one adapter directory" in again.output
