"""Adapter files: round trips, atomic writes, and every check on loading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterFileError
from llm_adapters.files import FORMAT_VERSION, OWN_CONFIG_NAME, WEIGHTS_NAME, fingerprint
from llm_adapters.testing import tiny_model_from_config

from .probe_plugin import TINY_GPT2, TINY_LLAMA


def trained(tmp_path: Path, **cfg) -> tuple[torch.nn.Module, Path]:  # type: ignore[no-untyped-def]
    model = tiny_model_from_config(TINY_LLAMA)
    la.attach(model, {"type": "probe", **cfg})
    with torch.no_grad():
        for p in adapter_parameters(model, "default").values():
            p.normal_(0, 0.1)
    return model, la.save_adapter(model, tmp_path / "adapter")


def x() -> torch.Tensor:
    return torch.arange(3, 15).reshape(2, 6)


def test_round_trip_under_another_name(tmp_path: Path) -> None:
    model, path = trained(tmp_path)
    assert sorted(os.listdir(path)) == [WEIGHTS_NAME, OWN_CONFIG_NAME]  # no temporary files left behind
    fresh = tiny_model_from_config(TINY_LLAMA)
    la.load_adapter(fresh, path, name="loaded")
    torch.testing.assert_close(fresh(x()).logits, model(x()).logits, atol=0, rtol=0)


def test_file_layout(tmp_path: Path) -> None:
    model, path = trained(tmp_path, target_modules=["attn.q"])
    meta = json.loads((path / OWN_CONFIG_NAME).read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["adapter_type"] == "probe"
    assert meta["config"] == {"type": "probe", "target_modules": ["attn.q"], "rank": 2, "kind": "parallel"}
    assert meta["plugin"] == {"name": "tests.core.probe_plugin", "version": "0.0.0"}
    assert meta["core_version"] == la.__version__
    assert meta["base_model"]["model_type"] == "llama" and meta["base_model"]["fingerprint"] == fingerprint(model)
    assert meta["targets"][0] == {
        "module": "model.layers.0.self_attn.q_proj",
        "kind": "parallel",
        "part": None,
        "role": "attn.q",
    }
    keys = sorted(load_file(path / WEIGHTS_NAME))
    assert keys == [f"model.layers.{i}.self_attn.q_proj.parallel.{p}" for i in range(2) for p in ("down", "up")]


def test_fingerprint_ignores_adapters_and_values() -> None:
    a, b = tiny_model_from_config(TINY_LLAMA, seed=0), tiny_model_from_config(TINY_LLAMA, seed=1)
    fp = fingerprint(a)
    la.attach(a, {"type": "probe"})
    assert fingerprint(a) == fp == fingerprint(b)
    assert fingerprint(tiny_model_from_config({**TINY_LLAMA, "num_hidden_layers": 3})) != fp


def test_wrong_base_model_is_refused_with_both_described(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    other = tiny_model_from_config({**TINY_LLAMA, "num_hidden_layers": 3})
    with pytest.raises(AdapterFileError) as exc:
        la.load_adapter(other, path)
    msg = str(exc.value)
    assert "this adapter was trained on a different base model" in msg
    assert "pass check_base=False to try anyway" in msg
    assert la.list_adapters(other) == []


def test_missing_and_unexpected_keys_are_listed_and_nothing_stays_attached(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    tensors = load_file(path / WEIGHTS_NAME)
    tensors.pop("model.layers.1.self_attn.v_proj.parallel.up")
    tensors["model.layers.9.self_attn.v_proj.parallel.up"] = torch.zeros(1)
    save_file(tensors, path / WEIGHTS_NAME)
    fresh = tiny_model_from_config(TINY_LLAMA)
    keys = list(fresh.state_dict())
    with pytest.raises(AdapterFileError) as exc:
        la.load_adapter(fresh, path)
    assert str(exc.value) == (
        f"{path / WEIGHTS_NAME} does not fit this model: 1 missing key(s), e.g. "
        "model.layers.1.self_attn.v_proj.parallel.up; 1 unexpected key(s), e.g. "
        "model.layers.9.self_attn.v_proj.parallel.up"
    )
    assert list(fresh.state_dict()) == keys


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    tensors = load_file(path / WEIGHTS_NAME)
    tensors["model.layers.0.self_attn.q_proj.parallel.up"] = torch.zeros(32, 3)
    save_file(tensors, path / WEIGHTS_NAME)
    with pytest.raises(
        AdapterFileError,
        match=r"1 shape mismatch\(es\): model.layers.0.self_attn.q_proj.parallel.up: "
        r"file \(32, 3\) vs model \(32, 2\)",
    ):
        la.load_adapter(tiny_model_from_config(TINY_LLAMA), path)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    meta = json.loads((path / OWN_CONFIG_NAME).read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (path / OWN_CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(AdapterFileError, match="is newer than this llm-adapters-core"):
        la.load_adapter(tiny_model_from_config(TINY_LLAMA), path)


def test_unknown_config_keys_from_a_newer_plugin_warn(tmp_path: Path) -> None:
    model, path = trained(tmp_path)
    meta = json.loads((path / OWN_CONFIG_NAME).read_text())
    meta["config"]["shiny_new_option"] = 3
    (path / OWN_CONFIG_NAME).write_text(json.dumps(meta))
    fresh = tiny_model_from_config(TINY_LLAMA)
    with pytest.warns(UserWarning, match=r"adapter 'probe': ignoring config field\(s\) \['shiny_new_option'\]"):
        la.load_adapter(fresh, path)
    torch.testing.assert_close(fresh(x()).logits, model(x()).logits)


def test_invalid_config_values_name_the_file(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    meta = json.loads((path / OWN_CONFIG_NAME).read_text())
    meta["config"]["rank"] = -1
    (path / OWN_CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(AdapterFileError, match=f"{path / OWN_CONFIG_NAME}: adapter 'probe': rank: input should be"):
        la.load_adapter(tiny_model_from_config(TINY_LLAMA), path)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: (p / OWN_CONFIG_NAME).unlink(), r"adapter_config.json \(or llm_adapters_config.json\) is missing"),
        (lambda p: (p / OWN_CONFIG_NAME).write_text("{not json"), "llm_adapters_config.json: not valid JSON"),
        (lambda p: (p / OWN_CONFIG_NAME).write_text("{}"), "the key 'format_version' is missing"),
        (lambda p: (p / WEIGHTS_NAME).unlink(), "adapter_model.safetensors is missing"),
        (lambda p: (p / WEIGHTS_NAME).write_bytes(b"garbage"), "not a readable safetensors file"),
    ],
)
def test_broken_directories(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    _, path = trained(tmp_path)
    setup(path)
    with pytest.raises(AdapterFileError, match=message):
        la.load_adapter(tiny_model_from_config(TINY_LLAMA), path)


def test_pickles_are_never_loaded(tmp_path: Path) -> None:
    d = tmp_path / "old"
    d.mkdir()
    torch.save({"x": torch.zeros(1)}, d / "adapter_model.bin")
    with pytest.raises(AdapterFileError, match="adapter_model.bin is a pickle; llm-adapters never loads pickles"):
        la.load_adapter(tiny_model_from_config(TINY_LLAMA), d)


def test_interrupted_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, path = trained(tmp_path)
    before = (path / WEIGHTS_NAME).read_bytes()

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        Path(args[1]).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr("llm_adapters.files.save_file", explode)
    with pytest.raises(KeyboardInterrupt):
        la.save_adapter(model, path)
    assert (path / WEIGHTS_NAME).read_bytes() == before
    assert sorted(os.listdir(path)) == [WEIGHTS_NAME, OWN_CONFIG_NAME]


def test_save_needs_a_name_when_several_are_attached(tmp_path: Path) -> None:
    model = tiny_model_from_config(TINY_LLAMA)
    la.attach(model, {"type": "probe"}, name="a")
    la.attach(model, {"type": "probe"}, name="b")
    with pytest.raises(AdapterFileError, match=r"several adapters are attached \(a, b\); pass name="):
        la.save_adapter(model, tmp_path / "x")
    la.save_adapter(model, tmp_path / "x", name="b")


def test_fused_part_adapter_round_trip(tmp_path: Path) -> None:
    model = tiny_model_from_config(TINY_GPT2)
    la.attach(model, {"type": "probe", "target_modules": ["attn.q", "attn.v"]})
    with torch.no_grad():
        for p in adapter_parameters(model, "default").values():
            p.normal_(0, 0.1)
    la.save_adapter(model, tmp_path / "a")
    assert "transformer.h.0.attn.c_attn.parallel_q.down" in load_file(tmp_path / "a" / WEIGHTS_NAME)
    fresh = tiny_model_from_config(TINY_GPT2)
    la.load_adapter(fresh, tmp_path / "a")
    torch.testing.assert_close(fresh(x()).logits, model(x()).logits, atol=0, rtol=0)
