"""The run config: file + flags + adapter options, validation messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_adapters.errors import ConfigError
from llm_adapters_train.run_config import TrainConfig, build_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_flags_win_over_the_file_and_options_merge_key_by_key(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        "model: m1\nadapter: lora\nadapter_options: {r: 32, alpha: 64}\ndata: d.json\noutput: out\n"
        "batch_size: 16\nmicro_batch_size: 4\nlearning_rate: 0.001\n"
    )
    cfg = build_config(
        tmp_path / "run.yaml",
        {"model": "m2", "batch_size": None, "micro_batch_size": 2, "learning_rate": None},
        {"r": 8, "dropout": 0.0},
    )
    assert cfg.model == "m2"  # flag wins
    assert cfg.batch_size == 16 and cfg.learning_rate == 0.001  # not given as flags: the file's
    assert cfg.micro_batch_size == 2
    assert cfg.adapter_options == {"r": 8, "alpha": 64, "dropout": 0.0}


def test_json_config_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"data": "d.json", "output": "o"}))
    cfg = build_config(tmp_path / "run.json")
    assert cfg == TrainConfig(data="d.json", output="o")
    assert cfg.model is None and cfg.train_on_inputs is False and cfg.template == "alpaca"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"output": "o"}, r"train config: data: required but not given"),
        ({"data": "d", "output": "o", "bogus": 1}, r"unknown field 'bogus'"),
        (
            {"data": "d", "output": "o", "batch_size": 0},
            r"batch_size: input should be greater than or equal to 1, got 0",
        ),
        (
            {"data": "d", "output": "o", "batch_size": 10, "micro_batch_size": 4},
            r"batch_size \(10\) must be a multiple of micro_batch_size \(4\)",
        ),
        ({"data": "d", "output": "o", "val_set_size": 2.5}, r"val_set_size >= 1 is a number of records"),
        ({"data": "d", "output": "o", "lr_scheduler": "steep"}, r"lr_scheduler: input should be 'linear'"),
    ],
)
def test_validation_messages(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(None, data)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*missing\.yaml' does not exist"):
        build_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping of config fields, got list"):
        build_config(tmp_path / "list.yaml")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON"):
        build_config(tmp_path / "bad.json")
    (tmp_path / "typo.yaml").write_text("data: d\noutput: o\nbatch_sise: 3\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown field 'batch_sise'"):
        build_config(tmp_path / "typo.yaml")


def test_every_field_is_described() -> None:
    for name, info in TrainConfig.model_fields.items():
        assert info.description, name
