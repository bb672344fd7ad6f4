"""A small grid (two methods, one task, two steps) end to end on a tiny LLaMA: what it writes, that each cell
is what the saved adapter really generates, that reusing one model for every method changes nothing, and that
an interrupted run resumed gives the results of an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llm_adapters.files import is_adapter_dir, load_adapter
from llm_adapters.template import get_template
from llm_adapters_eval.generation import GenerationSettings, generate
from llm_adapters_reproduce.grid import parse_grid
from llm_adapters_reproduce.plan import build_plan
from llm_adapters_reproduce.runner import run_grid
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import train
from tests.evaluation.helpers import char_tokenizer, tiny_llama

from .conftest import ADDSUB, grid_dict, write_layout

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"


def _plan(data: Path, **overrides):
    return build_plan(parse_grid(grid_dict(**overrides), "test grid"), source="test grid", data_dir=str(data))


def _run(plan, out: Path, **kw):
    lines: list[str] = []
    data = run_grid(plan, out, model=tiny_llama(), tokenizer=char_tokenizer(), echo=lines.append, **kw)
    return data, lines


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _greedy(model, tokenizer, problems: list[dict]) -> list[str]:
    prompts = [get_template("alpaca").prompt(p["instruction"], "") for p in problems]
    outs = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=4, batch_size=4), progress=False)
    return [o.text for o in outs]


def test_a_small_grid_trains_evaluates_and_tabulates(tmp_path: Path) -> None:
    data = write_layout(tmp_path / "data")
    plan = _plan(data)
    out = tmp_path / "out"
    results, lines = _run(plan, out)

    saved = json.loads((out / "results.json").read_text())
    assert saved["cells"] == results["cells"]
    assert [(c["method"], c["task"], c["count"]) for c in saved["cells"]] == [
        ("zero-shot", "addsub", 4),
        ("lora", "addsub", 4),
        ("series", "addsub", 4),
    ]
    tok = char_tokenizer()
    for cell in saved["cells"]:
        records = _records(out / cell["records"])
        assert len(records) == 4
        assert cell["correct"] == sum(r["correct"] for r in records)
        assert cell["accuracy"] == pytest.approx(cell["correct"] / 4)
        # each cell is what its model generates: the base, or a fresh model with the saved adapter
        model = tiny_llama()
        if cell["method"] != "zero-shot":
            load_adapter(model, out / cell["method"] / "adapter")
        assert [r["generation"] for r in records] == _greedy(model, tok, ADDSUB)

    # the training data left out the evaluated problem it repeated, and nothing else
    kept = json.loads((out / "data" / "train.json").read_text())
    original = json.loads((data / "ft-training_set" / "train.json").read_text())
    assert kept == original[:-1]
    assert saved["settings"]["left_out"] == 1 and saved["settings"]["overlapping_records"] == 1
    assert {m: t["global_step"] for m, t in saved["trainings"].items()} == {"lora": 2, "series": 2}

    for method in ("lora", "series"):
        folder = out / method
        assert is_adapter_dir(folder / "adapter")
        for name in ("adapter/adapter_model.safetensors", "adapter/metrics.json"):
            assert (folder / name).is_file(), name
        assert (folder / "adapter" / "loss.png").read_bytes()[:8] == PNG
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["tasks"]["addsub"]["accuracy"] == next(
            c["accuracy"] for c in saved["cells"] if c["method"] == method
        )
    assert (out / "results.png").read_bytes()[:8] == PNG

    table = (out / "results.md").read_text().splitlines()
    start = table.index("| Model | Method | AddSub | Avg |")
    pct = {c["method"]: f"{100 * c['accuracy']:.1f}" for c in saved["cells"]}
    rows = [line.split(" | ") for line in table[start + 2 : start + 7]]
    assert [(r[1], r[2]) for r in rows] == [
        ("zero-shot", pct["zero-shot"]),
        ("lora", pct["lora"]),
        ("series", pct["series"]),
        ("LoRA", "83.3"),  # the paper's LLaMA-7B AddSub, as published
        ("Series", "80.0"),
    ]
    assert rows[3][0] == "| LLaMA-7B (paper)"
    # one progress line per job: 1 zero-shot cell, then per method a training and a cell
    progress = [line for line in lines if line.startswith("[")]
    assert [p.split(" |")[0] for p in progress] == [
        "[1/5] zero-shot: evaluating AddSub (4 examples)",
        "[2/5] lora: training lora (2 steps)",
        "[3/5] lora: evaluating AddSub (4 examples)",
        "[4/5] series: training series (2 steps)",
        "[5/5] series: evaluating AddSub (4 examples)",
    ]
    assert "left" in progress[-1]


def test_reusing_one_model_trains_the_same_adapter_as_a_fresh_model(tmp_path: Path) -> None:
    data = write_layout(tmp_path / "data")
    out = tmp_path / "out"
    _run(_plan(data), out)
    # the series adapter was trained second, on the model that had carried the LoRA adapter before
    method = next(m for m in _plan(data).methods if m.name == "series")
    config = TrainConfig.model_validate(
        {
            **method.training,
            "adapter": "series",
            "adapter_options": method.adapter_options,
            "data": str(out / "data" / "train.json"),
            "output": str(tmp_path / "alone"),
            "progress": False,
        }
    )
    train(config, model=tiny_llama(), tokenizer=char_tokenizer())
    ours = load_file(out / "series" / "adapter" / "adapter_model.safetensors")
    alone = load_file(tmp_path / "alone" / "adapter_model.safetensors")
    assert ours.keys() == alone.keys() and ours
    for key in ours:
        torch.testing.assert_close(ours[key], alone[key], rtol=0, atol=1e-6)


def test_an_interrupted_run_resumed_equals_an_uninterrupted_one(tmp_path: Path, monkeypatch) -> None:
    import llm_adapters_eval.per_task as per_task

    data = write_layout(tmp_path / "data")
    two_tasks = {"tasks": ["addsub", "singleeq"]}
    whole, _ = _run(_plan(data, **two_tasks), tmp_path / "whole")

    real = per_task.evaluate_task
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[2].name)
        if len(calls) == 4:  # zero-shot x 2, lora addsub, then Ctrl-C in lora singleeq
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(per_task, "evaluate_task", interrupted)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _run(_plan(data, **two_tasks), out)
    monkeypatch.setattr(per_task, "evaluate_task", real)
    first = json.loads((out / "results.json").read_text())
    assert [(c["method"], c["task"]) for c in first["cells"]] == [
        ("zero-shot", "addsub"),
        ("zero-shot", "singleeq"),
        ("lora", "addsub"),
    ]
    kept = {c: (out / f"{c}.jsonl").read_text() for c in ("zero-shot/addsub", "lora/addsub")}
    adapter_before = (out / "lora" / "adapter" / "adapter_model.safetensors").read_bytes()

    resumed, lines = _run(_plan(data, **two_tasks), out, resume=True)
    assert lines[0] == f"resuming: 4 of 8 jobs already finished in {out}"
    assert [line.split(" |")[0] for line in lines if line.startswith("[")] == [
        "[5/8] lora: evaluating SingleEq (2 examples)",
        "[6/8] series: training series (2 steps)",
        "[7/8] series: evaluating AddSub (4 examples)",
        "[8/8] series: evaluating SingleEq (2 examples)",
    ]
    # the finished cells and the trained adapter were kept, not redone
    assert {c: (out / f"{c}.jsonl").read_text() for c in kept} == kept
    assert (out / "lora" / "adapter" / "adapter_model.safetensors").read_bytes() == adapter_before

    def key(cells):
        return sorted((c["method"], c["task"], c["correct"], c["count"]) for c in cells)

    assert key(resumed["cells"]) == key(whole["cells"])
    for cell in whole["cells"]:
        assert [r["generation"] for r in _records(out / cell["records"])] == [
            r["generation"] for r in _records(tmp_path / "whole" / cell["records"])
        ]


def test_a_method_that_fails_is_recorded_and_the_others_finish(tmp_path: Path) -> None:
    from llm_adapters_reproduce.errors import ReproduceError

    data = write_layout(tmp_path / "data")
    grid = grid_dict()
    grid["methods"][0]["adapter"]["target_modules"] = ["no_such_proj"]  # a valid config that fits no module
    plan = build_plan(parse_grid(grid, "g"), source="g", data_dir=str(data))
    out = tmp_path / "out"
    with pytest.raises(ReproduceError) as exc:
        _run(plan, out)
    assert str(exc.value).startswith("1 method(s) failed: lora: ")
    assert "no_such_proj" in str(exc.value) and f"The other results are in {out}" in str(exc.value)
    saved = json.loads((out / "results.json").read_text())
    assert [(c["method"], c["task"]) for c in saved["cells"]] == [("zero-shot", "addsub"), ("series", "addsub")]
    assert list(saved["errors"]) == ["lora"] and "lora" not in saved["trainings"]
    table = (out / "results.md").read_text()
    assert "| series |" in table and "| lora |" not in table
