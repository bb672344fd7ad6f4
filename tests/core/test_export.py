"""``llm-adapters export``: the merged checkpoint loads with transformers alone and equals the adapted model."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Literal

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterStateError
from llm_adapters.testing import tiny_model_from_config, tiny_tokenizer
from llm_adapters_train.export import export_merged

from .probe_plugin import TINY_LLAMA


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    model = tiny_model_from_config(TINY_LLAMA)
    model.save_pretrained(tmp_path / "base")
    tiny_tokenizer().save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def test_export_command_merges_into_a_plain_checkpoint(base_dir: Path, tmp_path: Path) -> None:
    from llm_adapters_train.cli_export import command

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    la.attach(model, {"type": "probe"})
    with torch.no_grad():
        for p in adapter_parameters(model, "default").values():
            p.normal_(0, 0.1)
    la.save_adapter(model, tmp_path / "adapter")
    ids = torch.arange(4, 16).reshape(2, 6)
    expected = model(ids).logits
    result = CliRunner().invoke(
        command,
        ["--model", str(base_dir), "--adapter-path", str(tmp_path / "adapter"), "--output", str(tmp_path / "merged")],
    )
    assert result.exit_code == 0, result.output
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    torch.testing.assert_close(merged(ids).logits, expected, atol=1e-5, rtol=1e-5)
    assert not any(".base." in k or ".adapters." in k for k in merged.state_dict())
    assert (tmp_path / "merged" / "tokenizer.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged.")]  # no temporary left


class Squash(la.AdapterLayer):
    """A non-linear parallel layer: ``tanh(x) @ A``; it declares nothing mergeable."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.full((d_in, d_out), 0.01))

    def forward(self, x: torch.Tensor, base_output: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(x) @ self.a


class SquashConfig(la.AdapterConfig):
    type: Literal["squash"] = "squash"


class SquashType(la.AdapterType):
    name = "squash"
    config_class = SquashConfig
    default_targets = ("attn.q",)

    def create_layer(self, config, site):  # type: ignore[no-untyped-def]
        return Squash(*site.features())


class SquashPlugin:
    @la.hookimpl
    def register_adapters(self, register):  # type: ignore[no-untyped-def]
        register(SquashType)


def test_non_mergeable_adapters_are_refused(base_dir: Path, tmp_path: Path) -> None:
    from llm_adapters.testing import use_plugins

    from . import probe_plugin

    with use_plugins(probe_plugin, SquashPlugin()):
        model = AutoModelForCausalLM.from_pretrained(base_dir)
        la.attach(model, {"type": "squash"})
        assert not la.list_adapters(model)[0].mergeable
        with pytest.raises(AdapterStateError, match=r"cannot merge default \(squash\) into the base weights"):
            export_merged(model, None, tmp_path / "out")
        refused = r"adapter 'default' \(squash\) cannot be merged: its 'parallel' layer \(Squash\) does not declare"
        with pytest.raises(AdapterStateError, match=refused):
            la.merge(model)
    assert not (tmp_path / "out").exists()


def test_inactive_adapters_are_refused_and_the_export_loads_without_stray_keys(base_dir: Path, tmp_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    la.attach(model, {"type": "probe"}, name="a")
    la.attach(model, {"type": "probe", "kind": "post", "target_modules": ["mlp.down"]}, name="b")
    with torch.no_grad():
        for name in ("a", "b"):
            for p in adapter_parameters(model, name).values():
                p.normal_(0, 0.05)
    ids = torch.arange(4, 16).reshape(2, 6)
    la.set_active(model, ["a"])
    with pytest.raises(AdapterStateError, match=r"adapter\(s\) b are attached but inactive"):
        export_merged(model, None, tmp_path / "out")
    assert not (tmp_path / "out").exists() and la.list_adapters(model)[0].active
    la.set_active(model, ["a", "b"])
    expected = model(ids).logits
    export_merged(model, None, tmp_path / "out")
    merged, info = AutoModelForCausalLM.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"] and not info.get("mismatched_keys")
    torch.testing.assert_close(merged(ids).logits, expected, atol=1e-5, rtol=1e-5)


def _adapter(base_dir: Path, where: Path) -> Path:
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    la.attach(model, {"type": "probe"})
    la.save_adapter(model, where)
    return where


def _export(base_dir: Path, adapter: Path, output: Path, *extra: str):  # type: ignore[no-untyped-def]
    from llm_adapters_train.cli_export import command

    args = ["--model", str(base_dir), "--adapter-path", str(adapter), "--output", str(output), *extra]
    return CliRunner().invoke(command, args)


def test_export_never_deletes_what_it_did_not_write(base_dir: Path, tmp_path: Path, monkeypatch) -> None:
    adapter = _adapter(base_dir, tmp_path / "adapter")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    r = _export(base_dir, adapter, mine)
    assert r.exit_code == 1 and "is not empty (notes.txt); choose a new directory, or pass --overwrite" in r.output
    r = _export(base_dir, adapter, mine, "--overwrite")
    assert r.exit_code == 1 and "it was not written by an export, so --overwrite does not apply" in r.output
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # its own input, a folder holding it, the current directory: refused before anything loads
    r = _export(base_dir, adapter, adapter)
    assert r.exit_code == 1 and "is (or holds) the adapter" in r.output
    r = _export(base_dir, adapter, tmp_path)
    assert r.exit_code == 1 and "is (or holds) the adapter" in r.output
    monkeypatch.chdir(mine)
    r = _export(base_dir, adapter, Path("."))
    assert r.exit_code == 1 and "is the current directory" in r.output
    assert sorted(p.name for p in adapter.iterdir()) == ["adapter_model.safetensors", "llm_adapters_config.json"]


def test_overwrite_replaces_only_a_previous_exports_files(base_dir: Path, tmp_path: Path) -> None:
    adapter = _adapter(base_dir, tmp_path / "adapter")
    out = tmp_path / "merged"
    assert _export(base_dir, adapter, out).exit_code == 0
    first = sorted(p.name for p in out.iterdir())
    assert "llm-adapters-export.json" in first and "model.safetensors" in first
    assert _export(base_dir, adapter, out).exit_code == 1  # not empty now
    (out / "notes.txt").write_text("mine")  # not written by the export: left alone
    r = _export(base_dir, adapter, out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted([*first, "notes.txt"])
    assert (out / "notes.txt").read_text() == "mine"
    assert AutoModelForCausalLM.from_pretrained(out) is not None


def test_a_second_writer_is_refused_at_once(base_dir: Path, tmp_path: Path) -> None:
    from llm_adapters.errors import OutputError
    from llm_adapters.fileio import OutputLock

    out = tmp_path / "merged"
    out.mkdir()
    with OutputLock(out, "train"):
        with pytest.raises(OutputError, match=r"is being written by another run \(train, pid \d+ on "):
            with OutputLock(out, "export"):
                pass
    gone = {"pid": 999_999_999, "host": socket.gethostname(), "command": "train"}  # no such process
    (out / ".llm-adapters.lock").write_text(json.dumps(gone))
    with pytest.warns(UserWarning, match="removing a stale lock"), OutputLock(out, "export"):
        assert (out / ".llm-adapters.lock").is_file()
    assert not (out / ".llm-adapters.lock").exists()
