"""Adapter types PEFT lacks (series, parallel) are saved under their own config name, so that PEFT-based tools
refuse them readably instead of misreading them, and they still load here; directories of the first format
(``adapter_config.json`` with top-level ``format_version``) keep loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import llm_adapters as la
from llm_adapters.errors import AdapterFileError
from llm_adapters.files import CONFIG_NAME, OWN_CONFIG_NAME, WEIGHTS_NAME
from llm_adapters.testing import tiny_model

peft = pytest.importorskip("peft")

CONFIGS = {
    "series": {"type": "series", "bottleneck_size": 8},
    "parallel": {"type": "parallel", "bottleneck_size": 8},
}


def _trained(kind: str) -> torch.nn.Module:
    model = tiny_model("llama")
    la.attach(model, CONFIGS[kind])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in la.engine.adapter_parameters(model, "default").values():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _logits(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_peft_refuses_our_own_types_readably_and_we_load_them(kind: str, tmp_path: Path) -> None:
    ours = _trained(kind)
    la.save_adapter(ours, tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [WEIGHTS_NAME, OWN_CONFIG_NAME]
    with pytest.raises(ValueError, match=r"Can't find 'adapter_config.json'"):
        peft.PeftModel.from_pretrained(tiny_model("llama"), str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"adapter model file not found in .*/a"):
        tiny_model("llama").load_adapter(str(tmp_path / "a"))
    back = la.load_adapter(tiny_model("llama"), tmp_path / "a").eval()
    assert torch.equal(_logits(back), _logits(ours))


def test_the_first_format_under_peft_s_name_still_loads(tmp_path: Path) -> None:
    ours = _trained("series")
    la.save_adapter(ours, tmp_path / "a")
    (tmp_path / "a" / OWN_CONFIG_NAME).rename(tmp_path / "a" / CONFIG_NAME)  # as saved before the own name
    back = la.load_adapter(tiny_model("llama"), tmp_path / "a").eval()
    assert torch.equal(_logits(back), _logits(ours))
    la.save_adapter(back, tmp_path / "a")  # saving again replaces the old-style file of ours
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [WEIGHTS_NAME, OWN_CONFIG_NAME]


def test_a_directory_with_both_config_files_is_refused(tmp_path: Path) -> None:
    la.save_adapter(_trained("series"), tmp_path / "a")
    (tmp_path / "a" / CONFIG_NAME).write_text((tmp_path / "a" / OWN_CONFIG_NAME).read_text())
    model = tiny_model("llama")
    with pytest.raises(AdapterFileError, match=r"holds both adapter_config.json and llm_adapters_config.json"):
        la.load_adapter(model, tmp_path / "a")
    assert not la.list_adapters(model)


def test_saving_beside_another_tool_s_adapter_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    d = tmp_path / "a"
    d.mkdir()
    theirs = json.dumps({"peft_type": "LORA", "r": 8})
    (d / CONFIG_NAME).write_text(theirs)
    with pytest.raises(AdapterFileError, match=r"holds adapter_config.json, which llm-adapters did not write"):
        la.save_adapter(_trained("series"), d)
    assert (d / CONFIG_NAME).read_text() == theirs
    assert sorted(p.name for p in d.iterdir()) == [CONFIG_NAME]
