"""Grids and bad input: every problem is a clear error before any model is loaded or anything trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_adapters.errors import ConfigError, OutputError
from llm_adapters.task import TaskDataError
from llm_adapters_reproduce.grid import load_grid, load_preset, parse_grid, preset_names
from llm_adapters_reproduce.plan import build_plan
from llm_adapters_reproduce.runner import run_grid

from .conftest import grid_dict, write_layout


def _plan(data: Path, *, source: str = "grid.yaml", **overrides):
    return build_plan(parse_grid(grid_dict(**overrides), source), source=source, data_dir=str(data))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_layout(tmp_path / "data")


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model fails the test: the errors below must come first."""
    import llm_adapters.models

    def refuse(*_args, **_kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(llm_adapters.models, "load_model", refuse)


# ---- the grid file ----------------------------------------------------------------------------------
def test_a_grid_file_with_errors_names_the_file_and_the_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmethods: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_grid(bad)

    grid = grid_dict(methodz=[], tasks=[])
    grid["methods"].append({"name": "lora", "adapter": {"type": "lora"}})
    grid["methods"].append({"name": "zero-shot", "adapter": {"r": 2}})
    (tmp_path / "g.json").write_text(json.dumps(grid))
    with pytest.raises(ConfigError) as exc:
        load_grid(tmp_path / "g.json")
    text = str(exc.value)
    assert text.startswith(f"{tmp_path / 'g.json'}: ")
    assert "unknown field 'methodz'" in text
    assert "tasks: list should have at least 1 item" in text
    assert "methods.3.name: 'zero-shot' is reserved" in text
    assert "methods.3.adapter: needs a 'type'" in text


def test_two_methods_of_one_name_are_refused() -> None:
    grid = grid_dict()
    grid["methods"][1]["name"] = "lora"
    with pytest.raises(ConfigError, match="two methods are called 'lora'; give each method its own name"):
        parse_grid(grid, "g.yaml")


def test_an_unknown_adapter_type_or_option_names_the_method(data: Path) -> None:
    grid = grid_dict()
    grid["methods"][1]["adapter"] = {"type": "loar", "r": 2}
    with pytest.raises(ConfigError) as exc:
        build_plan(parse_grid(grid, "g.yaml"), source="g.yaml", data_dir=str(data))
    assert str(exc.value).startswith("g.yaml: method 'series': ")
    assert "'loar'" in str(exc.value) and "lora" in str(exc.value)  # the installed types are listed

    with pytest.raises(ConfigError, match=r"g\.yaml: method 'lora': adapter 'lora': r: input should be greater"):
        _plan(data, source="g.yaml", methods=[{"name": "lora", "adapter": {"type": "lora", "r": 0}}])


def test_an_unknown_task_is_refused_with_the_installed_ones(data: Path) -> None:
    with pytest.raises(ConfigError, match=r"g\.yaml: tasks: unknown task 'addsubb'; installed tasks: .*addsub"):
        _plan(data, source="g.yaml", tasks=["addsubb"])


def test_settings_are_checked_against_train_and_evaluate(data: Path) -> None:
    with pytest.raises(ConfigError, match=r"g\.yaml: method 'lora': training: batch_size: input should be"):
        _plan(data, source="g.yaml", training={"batch_size": 0})
    with pytest.raises(ConfigError, match=r"g\.yaml: evaluation: unknown field 'limt'"):
        _plan(data, source="g.yaml", evaluation={"limt": 3})
    with pytest.raises(ConfigError, match=r"'output' cannot be set here; it is set by the run"):
        _plan(data, source="g.yaml", training={"output": "x"})
    grid = grid_dict()
    grid["methods"][0]["training"] = {"data": "other.json"}
    with pytest.raises(ConfigError, match=r"method 'lora': training: 'data' cannot be set here; .*train_data"):
        build_plan(parse_grid(grid, "g.yaml"), source="g.yaml", data_dir=str(data))


def test_methods_chosen_on_the_command_line_must_be_in_the_grid(data: Path) -> None:
    grid = parse_grid(grid_dict(), "g.yaml")
    plan = build_plan(grid, source="g.yaml", data_dir=str(data), methods=["series"])
    assert [m.name for m in plan.methods] == ["series"]
    with pytest.raises(ConfigError, match=r"--methods: 'dora' not in g\.yaml; its methods are: lora, series"):
        build_plan(grid, source="g.yaml", data_dir=str(data), methods=["lora,dora"])


# ---- data -------------------------------------------------------------------------------------------
def test_missing_data_sets_are_named(tmp_path: Path, data: Path) -> None:
    with pytest.raises(TaskDataError, match=r"the data folder '.*nowhere' \(from --data-dir\) does not exist"):
        build_plan(parse_grid(grid_dict(), "g"), source="g", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(
        TaskDataError, match=r"training data not found: .*ft-training_set/math_10k\.json \(g: train_data"
    ):
        _plan(data, source="g", train_data="ft-training_set/math_10k.json")
    missing = data / "dataset" / "SingleEq" / "test.json"
    missing.unlink()
    with pytest.raises(TaskDataError, match=rf"task 'singleeq': data file not found: {missing}"):
        _plan(data, tasks=["addsub", "singleeq"])


def test_the_evaluated_problems_the_training_data_repeats_are_found(data: Path) -> None:
    plan = _plan(data, tasks=["addsub", "singleeq"])
    # write_layout appends one record repeating the first AddSub problem (other spacing and case)
    records = json.loads((data / "ft-training_set" / "train.json").read_text())
    assert plan.train_records == len(records) and plan.overlap == [len(records) - 1]
    # only the evaluated problems count: with limit 1 on SingleEq and AddSub the repeat is still found,
    # with the first AddSub problem outside the evaluated ones it is not
    assert _plan(data, evaluation={"limit": 1}).overlap == [len(records) - 1]
    assert _plan(data, tasks=["singleeq"]).overlap == []


# ---- the output folder ------------------------------------------------------------------------------
def _results_of(data: Path, out: Path, **overrides) -> None:
    """An output folder holding a finished-looking results.json of a grid (written by the run's own store)."""
    from llm_adapters_reproduce.results import Results

    Results.open(out, _plan(data, **overrides), resume=False).save()


def test_an_output_folder_of_other_content_is_refused(tmp_path: Path, data: Path, no_model) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"is not empty and holds no results\.json \(it has: notes\.txt\)"):
        run_grid(_plan(data), out, resume=True)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        run_grid(_plan(data), tmp_path / "file")


def test_results_are_continued_only_with_resume(tmp_path: Path, data: Path, no_model) -> None:
    out = tmp_path / "out"
    _results_of(data, out)
    with pytest.raises(OutputError, match="already holds the results of a run of grid 'tiny'; pass --resume"):
        run_grid(_plan(data), out)


def test_another_grids_results_are_refused(tmp_path: Path, data: Path, no_model) -> None:
    out = tmp_path / "out"
    _results_of(data, out)
    before = (out / "results.json").read_text()
    with pytest.raises(OutputError) as exc:
        run_grid(_plan(data, evaluation={"limit": 2, "max_new_tokens": 4, "batch_size": 4}), out, resume=True)
    assert "holds the results of another grid ('tiny', with other settings: evaluation.limit: 4 there, 2 now)" in str(
        exc.value
    )
    with pytest.raises(OutputError, match=r"tasks: \['addsub'\] there, \['addsub', 'singleeq'\] now"):
        run_grid(_plan(data, tasks=["addsub", "singleeq"]), out, resume=True)
    changed = grid_dict()
    changed["methods"][0]["adapter"]["r"] = 4
    plan = build_plan(parse_grid(changed, "g"), source="g", data_dir=str(data))
    with pytest.raises(
        OutputError, match=r"holds method 'lora' trained with another config \(adapter\.r: 2 there, 4 now\)"
    ):
        run_grid(plan, out, resume=True)
    assert (out / "results.json").read_text() == before  # nothing written


# ---- presets ----------------------------------------------------------------------------------------
def test_the_presets_ship_and_validate() -> None:
    import llm_adapters_parallel.plugin
    import llm_adapters_prompt.plugin
    from llm_adapters.config import parse_config
    from llm_adapters.testing import use_plugins
    from llm_adapters_lora import plugin as lora_plugin
    from llm_adapters_series import plugin as series_plugin
    from llm_adapters_train.run_config import TrainConfig

    assert {"quick", "math", "commonsense"} <= set(preset_names())
    with use_plugins(lora_plugin, series_plugin, llm_adapters_parallel.plugin, llm_adapters_prompt.plugin):
        for name in ("quick", "math", "commonsense"):
            grid = load_preset(name)
            assert [m.adapter["type"] for m in grid.methods] == ["lora", "series", "parallel", "prefix"]
            for m in grid.methods:
                parse_config(m.adapter)
                options = {k: v for k, v in m.adapter.items() if k != "type"}
                TrainConfig.model_validate(
                    {**grid.training, **m.training, "adapter": m.adapter["type"], "adapter_options": options}
                    | {"data": "x.json", "output": "o"}
                )


def test_the_quick_preset_on_the_reference_data() -> None:
    """The quick preset's plan on the shared data: 30 problems per set, and the training records that repeat
    one of them (counted here by hand) left out."""
    import llm_adapters_parallel.plugin
    import llm_adapters_prompt.plugin
    import llm_adapters_templates
    from llm_adapters.testing import use_plugins
    from llm_adapters_lora import plugin as lora_plugin
    from llm_adapters_series import plugin as series_plugin
    from llm_adapters_tasks import math_tasks
    from tests.shared_data import shared_or_skip

    root = shared_or_skip()
    adapters = (lora_plugin, series_plugin, llm_adapters_parallel.plugin, llm_adapters_prompt.plugin)
    plugins = (*adapters, math_tasks, llm_adapters_templates)
    with use_plugins(*plugins):
        plan = build_plan(load_preset("quick"), source="preset 'quick'", data_dir=str(root))
    assert [t.name for t in plan.tasks] == ["addsub", "multiarith", "singleeq"]
    assert {t: len(e) for t, e in plan.examples.items()} == {"addsub": 30, "multiarith": 30, "singleeq": 30}
    tests = set()
    for name in ("AddSub", "MultiArith", "SingleEq"):
        for rec in json.loads((root / "dataset" / name / "test.json").read_text())[:30]:
            tests.add(" ".join(rec["instruction"].lower().split()))
    train = json.loads((root / "ft-training_set" / "math_data.json").read_text())
    repeats = [i for i, r in enumerate(train) if " ".join(r["instruction"].lower().split()) in tests]
    assert plan.train_records == len(train) and plan.overlap == repeats and len(repeats) >= 90


def test_a_model_that_does_not_load_leaves_the_folder_reusable(tmp_path: Path, data: Path, monkeypatch) -> None:
    import llm_adapters.models
    from llm_adapters.errors import ModelLoadError

    def missing(name, **_kwargs):
        raise ModelLoadError(f"no model {name!r}")

    monkeypatch.setattr(llm_adapters.models, "load_model", missing)
    out = tmp_path / "out"
    with pytest.raises(ModelLoadError, match="no model 'typo-model'"):
        run_grid(_plan(data, model="typo-model"), out)
    assert list(out.iterdir()) == []  # neither results.json nor a lock: the next run may use it afresh
