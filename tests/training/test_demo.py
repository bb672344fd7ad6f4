"""The demo's plumbing on a tiny model with the probe adapter (the real run is measured by hand: see
docs/training.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_adapters.testing import tiny_model_from_config
from llm_adapters_demo.demo import DemoSettings, run_demo
from tests.core import probe_plugin

from .helpers import char_tokenizer

pytestmark = pytest.mark.usefixtures("probe")


def _settings(**kw) -> DemoSettings:
    base = dict(
        n_train=16,
        n_heldout=6,
        template="alpaca",
        adapter={"type": "probe", "rank": 2},
        batch_size=4,
        micro_batch_size=2,
        cutoff_len=320,  # one token per character
        max_new_tokens=3,
        eval_batch_size=4,
        progress=False,
    )
    base.update(kw)
    return DemoSettings(**base)


def test_demo_writes_summary_consistent_with_its_generations(tmp_path: Path) -> None:
    model = tiny_model_from_config(probe_plugin.TINY_LLAMA)
    lines: list[str] = []
    summary = run_demo(tmp_path / "demo", _settings(), model=model, tokenizer=char_tokenizer(), echo=lines.append)
    out = tmp_path / "demo"
    saved = json.loads((out / "summary.json").read_text())
    assert saved["accuracy_before"] == summary["accuracy_before"]
    for when in ("before", "after"):
        rows = [json.loads(line) for line in (out / f"generations_{when}.jsonl").read_text().splitlines()]
        assert len(rows) == 6
        assert saved[f"accuracy_{when}"] == sum(r["correct"] for r in rows) / 6
        assert 0.0 <= saved[f"accuracy_{when}"] <= 1.0
    assert saved["train_problems"] == 16 and saved["train_steps"] == 4  # 16 problems / batch 4, one epoch
    assert len(json.loads((out / "data" / "train.json").read_text())) == 16
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "adapter" / "loss.png").is_file()
    assert (out / "loss.png").read_bytes() == (out / "adapter" / "loss.png").read_bytes()
    assert saved["paths"]["loss_plot"] == str(out / "loss.png")
    table = lines[-1]
    assert "before (zero-shot)" in table and "after" in table and str(out / "summary.json") in table


def test_the_demo_problems_are_a_task_that_evaluation_selects_and_scores() -> None:
    import llm_adapters_demo
    from llm_adapters.testing import use_plugins
    from llm_adapters_eval.runner import select_tasks

    with use_plugins(llm_adapters_demo):
        (task,) = select_tasks("Arithmetic")
        examples = task.load(limit=5)
        assert [e.index for e in examples] == [0, 1, 2, 3, 4]
        assert len(task.load()) == 100
        for e in examples:  # each worked answer scores as correct, and a wrong number does not
            assert task.score(e.output, e, "robust").correct
            assert not task.score("The answer is 0.5.", e, "reference").correct
