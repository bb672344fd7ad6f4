"""Bad fusion configs fail at once, with a message that says what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

import llm_adapters as la
from llm_adapters.config import parse_config
from llm_adapters.errors import ConfigError

from .conftest import tiny_llama


def _error(options: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({"type": "fusion", **options})
    return str(info.value)


def test_fewer_than_two_adapters(adapter_dirs: dict[str, Path]) -> None:
    assert "at least 2" in _error({"adapters": [str(adapter_dirs["p1"])]})
    assert "adapters" in _error({})


def test_missing_directory(adapter_dirs: dict[str, Path], tmp_path: Path) -> None:
    msg = _error({"adapters": [str(adapter_dirs["p1"]), str(tmp_path / "nowhere")]})
    assert "nowhere" in msg and "does not exist" in msg


def test_adapter_of_another_type(adapter_dirs: dict[str, Path], tmp_path: Path) -> None:
    fusion_dir = tmp_path / "fusion"
    model = tiny_llama()
    la.attach(model, {"type": "fusion", "adapters": [str(adapter_dirs["p1"]), str(adapter_dirs["p2"])]})
    la.save_adapter(model, fusion_dir)
    msg = _error({"adapters": [str(adapter_dirs["p1"]), str(fusion_dir)]})
    assert "'fusion' adapter" in msg and "'series' or 'parallel'" in msg


def test_adapters_on_different_sites(adapter_dirs: dict[str, Path]) -> None:
    msg = _error({"adapters": [str(adapter_dirs["p1"]), str(adapter_dirs["h"])]})
    assert "same sites" in msg and "up_proj:pre" in msg
    # series and parallel adapters have different kinds even where their modules meet
    assert "same sites" in _error({"adapters": [str(adapter_dirs["p1"]), str(adapter_dirs["par1"])]})


def test_other_options(adapter_dirs: dict[str, Path]) -> None:
    two = [str(adapter_dirs["p1"]), str(adapter_dirs["p2"])]
    assert "temperature" in _error({"adapters": two, "temperature": 0})
    assert "target_modules" in _error({"adapters": two, "target_modules": ["mlp.down"]})
    assert "twice" in _error({"adapters": [two[0], two[0]]})
    assert "unknown" in _error({"adapters": two, "r": 4}).lower() or "extra" in _error({"adapters": two, "r": 4})


def test_paths_are_stored_absolute(adapter_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(adapter_dirs["p1"].parent)
    cfg = parse_config({"type": "fusion", "adapters": "p1,p2"})
    assert cfg.adapters == [str(adapter_dirs["p1"].resolve()), str(adapter_dirs["p2"].resolve())]


def test_adapters_for_another_model_do_not_fit(tmp_path: Path) -> None:
    from llm_adapters.registry import model_families
    from llm_adapters.testing import tiny_model_from_config

    wide = dict(model_families()["llama"].tiny_config, hidden_size=24, num_attention_heads=6, num_key_value_heads=2)
    paths = []
    for i in range(2):
        model = tiny_model_from_config(wide)
        la.attach(model, {"type": "series", "variant": "adapterp", "bottleneck_size": 4}, name="a")
        la.save_adapter(model, tmp_path / f"w{i}", name="a")
        paths.append(str(tmp_path / f"w{i}"))
    with pytest.raises(Exception, match="does not fit"):
        la.attach(tiny_llama(), {"type": "fusion", "adapters": paths})
