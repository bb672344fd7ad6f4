"""``llm-adapters export``: the merged checkpoint loads with transformers alone and equals the adapted model."""

from __future__ import annotations

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
