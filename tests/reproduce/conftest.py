"""Reproduction tests run with the core's probe family (a tiny LLaMA), the real LoRA and series adapter plugins,
the tasks, templates, training, evaluation and reproduce plugins, all registered inline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import llm_adapters_eval
import llm_adapters_reproduce
import llm_adapters_templates
import llm_adapters_train
from llm_adapters.testing import use_plugins
from llm_adapters_lora import plugin as lora_plugin
from llm_adapters_series import plugin as series_plugin
from llm_adapters_tasks import commonsense_tasks, math_tasks
from tests.core import probe_plugin

PLUGINS = (
    probe_plugin,
    lora_plugin,
    series_plugin,
    math_tasks,
    commonsense_tasks,
    llm_adapters_templates,
    llm_adapters_train,
    llm_adapters_eval,
    llm_adapters_reproduce,
)

#: short problems, so that the char-level prompts stay small
ADDSUB = [
    {"instruction": "Tom has 2 apples and gets 3 more. How many?", "input": "", "output": "", "answer": "5"},
    {"instruction": "Ann had 9 pens and lost 4. How many are left?", "input": "", "output": "", "answer": "5"},
    {"instruction": "A box holds 6 eggs; 1 broke. How many are whole?", "input": "", "output": "", "answer": "5"},
    {"instruction": "Sam read 4 pages, then 4 more. How many pages?", "input": "", "output": "", "answer": "8"},
]
SINGLEEQ = [
    {"instruction": "x + 2 = 7. What is x?", "input": "", "output": "", "answer": "5"},
    {"instruction": "3 times y is 12. What is y?", "input": "", "output": "", "answer": "4"},
]


@pytest.fixture(autouse=True)
def plugins():
    with use_plugins(*PLUGINS) as pm:
        yield pm


def training_records(n: int = 24) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        a, b = 1 + i % 7, 2 + i % 5
        out.append(
            {"instruction": f"{a} plus {b}?", "input": "", "output": f"The answer is {a + b}.", "answer": str(a + b)}
        )
    return out


def write_layout(root: Path, *, train: list[dict[str, Any]] | None = None) -> Path:
    """A data folder in the LLM-Adapters layout: dataset/AddSub, dataset/SingleEq, ft-training_set/train.json.
    The training data repeats the first AddSub problem (spaced and cased differently), to be left out."""
    for name, records in (("AddSub", ADDSUB), ("SingleEq", SINGLEEQ)):
        (root / "dataset" / name).mkdir(parents=True, exist_ok=True)
        (root / "dataset" / name / "test.json").write_text(json.dumps(records))
    if train is None:
        repeated = {**ADDSUB[0], "instruction": "  TOM has 2 apples   and gets 3 more. How many?", "output": "5"}
        train = [*training_records(), repeated]
    (root / "ft-training_set").mkdir(parents=True, exist_ok=True)
    (root / "ft-training_set" / "train.json").write_text(json.dumps(train))
    return root


def grid_dict(**overrides: Any) -> dict[str, Any]:
    """Two methods (LoRA, series), one task, two steps each: a grid that runs in seconds on the tiny model."""
    grid = {
        "name": "tiny",
        "description": "two methods, one task, two steps",
        "train_data": "ft-training_set/train.json",
        "tasks": ["addsub"],
        "training": {"max_steps": 2, "batch_size": 2, "micro_batch_size": 2, "warmup_steps": 0, "learning_rate": 0.01},
        "evaluation": {"limit": 4, "max_new_tokens": 4, "batch_size": 4},
        "methods": [
            {"name": "lora", "adapter": {"type": "lora", "r": 2, "alpha": 4, "preset": "paper-best"}},
            {"name": "series", "adapter": {"type": "series", "bottleneck_size": 4, "variant": "adapterp"}},
        ],
    }
    grid.update(overrides)
    return grid
