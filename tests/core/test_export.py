"""``llm-adapters export``: the merged checkpoint loads with transformers alone and equals the adapted model."""

from __future__ import annotations

from pathlib import Path

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


def test_non_mergeable_adapters_are_refused(base_dir: Path, tmp_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    la.attach(model, {"type": "probe", "kind": "post"})
    with pytest.raises(AdapterStateError, match="cannot be merged"):
        export_merged(model, None, tmp_path / "out")
    assert not (tmp_path / "out").exists()
