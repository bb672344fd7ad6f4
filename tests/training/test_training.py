"""The training loop on a tiny model with the inline probe adapter: outputs, checkpoints, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

import llm_adapters as la
from llm_adapters.engine import adapter_tensors
from llm_adapters.testing import tiny_model_from_config
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import TrainingError, TrainingInterrupted, latest_checkpoint, train
from tests.core import probe_plugin

pytestmark = pytest.mark.usefixtures("probe")


def _config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=str(data),
        output=str(out),
        adapter="probe",
        adapter_options={"rank": 4},
        batch_size=4,
        micro_batch_size=2,
        max_steps=6,
        save_steps=3,
        logging_steps=1,
        warmup_steps=0,
        learning_rate=2e-2,
        progress=False,
        report_to="none",
    )
    base.update(kw)
    return TrainConfig(**base)


def _fresh():
    return tiny_model_from_config(probe_plugin.TINY_LLAMA, seed=0)


def test_train_writes_adapter_metrics_plot_and_safetensors_checkpoints(tmp_path, data_file, tokenizer) -> None:
    model = _fresh()
    cfg = _config(data_file, tmp_path / "out", val_set_size=8, eval_steps=3)
    result = train(cfg, model=model, tokenizer=tokenizer)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {
        "llm_adapters_config.json",
        "adapter_model.safetensors",
        "metrics.json",
        "loss.png",
        "train_config.json",
        "checkpoint-3",
        "checkpoint-6",
    }
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for ckpt in ("checkpoint-3", "checkpoint-6"):
        names = {p.name for p in (out / ckpt).iterdir()}
        assert {"adapter_model.safetensors", "llm_adapters_config.json", "trainer_state.json"} <= names
        # no pickled model and no pickled training arguments
        assert not names & {"pytorch_model.bin", "model.safetensors", "training_args.bin", "adapter_model.bin"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 6 and result.metrics["global_step"] == 6
    assert metrics["train_examples"] == 40 and metrics["validation_examples"] == 8
    assert metrics["gradient_accumulation_steps"] == 2
    assert [e["step"] for e in metrics["log_history"] if "eval_loss" in e] == [3, 6]
    losses = [e["loss"] for e in metrics["log_history"] if "loss" in e]
    assert len(losses) == 6
    assert metrics["trainable_parameters"] == sum(t.numel() for t in adapter_tensors(model, "default").values())

    # the final adapter loads into a fresh base model and reproduces the trained model's outputs
    ids = torch.tensor([tokenizer("3+4?").input_ids])
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        fresh = _fresh()
        base = fresh(input_ids=ids).logits
        la.load_adapter(fresh, out)
        got = fresh(input_ids=ids).logits
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(base, expected, atol=1e-4), "training must have changed the adapter"
    # the checkpoint at the last step holds the same adapter
    ck = _fresh()
    la.load_adapter(ck, out / "checkpoint-6")
    with torch.no_grad():
        torch.testing.assert_close(ck(input_ids=ids).logits, expected)


def test_training_lowers_the_loss(tmp_path, data_file, tokenizer) -> None:
    # a low-rank function on the output head learns the data's token statistics quickly
    opts = {"rank": 4, "target_modules": ["lm_head"]}
    cfg = _config(data_file, tmp_path / "out", max_steps=30, save_steps=100, learning_rate=5e-2, adapter_options=opts)
    result = train(cfg, model=_fresh(), tokenizer=tokenizer)
    losses = [e["loss"] for e in result.metrics["log_history"] if "loss" in e]
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5, losses


class _StopAt(TrainerCallback):
    """Interrupts the run as Ctrl-C would, once ``step`` is done and its checkpoint written."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == self.step + 1:
            raise KeyboardInterrupt


def test_resume_continues_at_the_same_step_and_matches_an_uninterrupted_run(tmp_path, data_file, tokenizer) -> None:
    opts = {"rank": 4}
    straight = _fresh()
    train(_config(data_file, tmp_path / "a", adapter_options=opts), model=straight, tokenizer=tokenizer)

    with pytest.raises(
        TrainingInterrupted, match=r"training interrupted at step 4; the last checkpoint is .*checkpoint-3"
    ):
        train(
            _config(data_file, tmp_path / "b", adapter_options=opts),
            model=_fresh(),
            tokenizer=tokenizer,
            callbacks=[_StopAt(3)],
        )
    assert latest_checkpoint(tmp_path / "b").name == "checkpoint-3"

    with pytest.raises(TrainingError, match=r"already holds checkpoints \(checkpoint-3\); pass --resume"):
        train(_config(data_file, tmp_path / "b"), model=_fresh(), tokenizer=tokenizer)

    resumed = _fresh()
    result = train(
        _config(data_file, tmp_path / "b", adapter_options=opts, resume=True), model=resumed, tokenizer=tokenizer
    )
    assert result.resumed_from.name == "checkpoint-3"
    steps = [e["step"] for e in result.metrics["log_history"] if "loss" in e]
    assert steps == [1, 2, 3, 4, 5, 6]  # history restored from the checkpoint, then steps 4..6 trained
    a = adapter_tensors(straight, "default")
    b = adapter_tensors(resumed, "default")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=1e-5)


def test_resume_without_checkpoint_starts_afresh_and_bad_path_is_an_error(tmp_path, data_file, tokenizer, capsys):
    train(_config(data_file, tmp_path / "c", resume=True, max_steps=1), model=_fresh(), tokenizer=tokenizer)
    assert "no checkpoint in" in capsys.readouterr().out
    with pytest.raises(TrainingError, match=r"cannot resume from .*nowhere: not a complete checkpoint"):
        train(_config(data_file, tmp_path / "d", resume=str(tmp_path / "nowhere")), model=_fresh(), tokenizer=tokenizer)


def test_batch_size_must_split_over_processes(tmp_path, data_file, tokenizer, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    from llm_adapters_train.trainer import gradient_accumulation

    with pytest.raises(TrainingError, match=r"batch_size 4 is not a multiple of micro_batch_size 2 x 3 process"):
        gradient_accumulation(_config(data_file, tmp_path), 3)
    assert gradient_accumulation(_config(data_file, tmp_path, batch_size=12), 3) == 2


def test_adapter_from_a_gathered_state_dict_equals_the_saved_adapter(tmp_path, tokenizer) -> None:
    """The path FSDP (full state dict) and DeepSpeed take: the adapter is cut out of the gathered weights."""
    from llm_adapters_train.checkpoints import adapter_state_dict_keys, save_gathered_adapter

    model = _fresh()
    la.attach(model, {"type": "probe", "rank": 3})
    with torch.no_grad():
        for t in adapter_tensors(model, "default").values():
            t.normal_()
    keys = adapter_state_dict_keys(model)
    assert set(keys) == set(adapter_tensors(model, "default"))
    la.save_adapter(model, tmp_path / "direct")
    gathered = {k: v.clone() for k, v in model.state_dict().items()}  # a copy, as a gather returns
    (tmp_path / "gathered").mkdir()
    saved = la.files.config_file(tmp_path / "direct")
    save_gathered_adapter(gathered, keys, (saved.name, saved.read_text()), tmp_path / "gathered")
    ids = torch.tensor([tokenizer("3+4?").input_ids])
    outs = []
    for d in ("direct", "gathered"):
        fresh = _fresh()
        la.load_adapter(fresh, tmp_path / d)
        with torch.no_grad():
            outs.append(fresh(input_ids=ids).logits)
    torch.testing.assert_close(outs[1], outs[0], atol=0, rtol=0)
    with pytest.raises(TrainingError, match="lacks adapter tensors"):
        save_gathered_adapter({}, keys, (saved.name, saved.read_text()), tmp_path / "gathered")


def test_tensorboard_is_used_when_installed(monkeypatch) -> None:
    import importlib.util

    from llm_adapters_train import trainer

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "tensorboard" in name else real(name))
    assert trainer._report_to("auto") == []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "tensorboard" else None)
    assert trainer._report_to("auto") == ["tensorboard"]
    assert trainer._report_to("none") == []


def test_gradient_checkpointing_trains_the_same_adapter(tmp_path, data_file, tokenizer) -> None:
    ends = []
    for flag in (False, True):
        model = _fresh()
        train(_config(data_file, tmp_path / str(flag), max_steps=2, gradient_checkpointing=flag), model=model,
              tokenizer=tokenizer)  # fmt: skip
        assert getattr(model, "is_activation_checkpointing", False) is flag
        ends.append(adapter_tensors(model, "default"))
    for k in ends[0]:
        torch.testing.assert_close(ends[1][k], ends[0][k], atol=1e-6, rtol=1e-5)


def test_no_trainable_example_is_a_clear_error(tmp_path, data_file, tokenizer) -> None:
    with pytest.raises(TrainingError, match=r"no training examples: .*data\.json has 48 training record\(s\) and none"):
        train(_config(data_file, tmp_path / "out", cutoff_len=16), model=_fresh(), tokenizer=tokenizer)
