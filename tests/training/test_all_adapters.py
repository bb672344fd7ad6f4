"""Training works for every installed adapter type on a tiny model of every installed family (the plugins
installed in this environment, through their entry points)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.testing import defaults_fall_short, tiny_model, use_plugins
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import train

from .helpers import char_tokenizer, records, write_json


def _installed() -> tuple[list[str], list[str]]:
    try:
        with use_plugins(entry_points=True):
            types = sorted(la.adapter_types())
            families = sorted(n for n, f in la.model_families().items() if f.tiny_config)
    except Exception:  # a broken plugin set must not break collection
        return [], []
    return types, families


TYPES, FAMILIES = _installed()


@pytest.fixture(autouse=True)
def installed_plugins():
    with use_plugins(entry_points=True) as pm:
        yield pm


@pytest.mark.skipif(not TYPES or not FAMILIES, reason="no adapter plugin or no model family is installed")
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("adapter", TYPES)
def test_two_training_steps(adapter: str, family: str, tmp_path: Path) -> None:
    reason = defaults_fall_short(adapter)
    if reason:
        pytest.skip(reason)
    tok = char_tokenizer()
    data = write_json(tmp_path / "data.json", records(8))
    model = tiny_model(family)
    la.attach(model, {"type": adapter})
    before = {k: v.detach().clone() for k, v in adapter_tensors(model, "default").items()}
    cfg = TrainConfig(
        adapter=adapter,
        data=str(data),
        output=str(tmp_path / "out"),
        max_steps=2,
        batch_size=2,
        micro_batch_size=2,
        warmup_steps=0,
        learning_rate=1e-2,
        cutoff_len=24,
        train_on_inputs=True,  # the tiny models hold 64 positions: keep whole (short) examples in the loss
        save_steps=1000,
        logging_steps=1,
        report_to="none",
        progress=False,
    )
    result = train(cfg, model=model, tokenizer=tok)
    assert result.metrics["global_step"] == 2
    assert math.isfinite(result.metrics["train_loss"])
    after = adapter_tensors(model, "default")
    assert any(not torch.equal(after[k], before[k]) for k in before), "no adapter tensor changed"

    ids = torch.tensor([tok("3+4?").input_ids])
    model.eval()
    fresh = tiny_model(family)
    la.load_adapter(fresh, tmp_path / "out")
    with torch.no_grad():
        torch.testing.assert_close(fresh(input_ids=ids).logits, model(input_ids=ids).logits)
