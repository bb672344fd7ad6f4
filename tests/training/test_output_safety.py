"""The output directory of a training run: checked before the model loads, one writer at a time, a finished
adapter never overwritten by accident, checkpoints that count only when complete, and no orphan temporaries."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llm_adapters.errors import OutputError
from llm_adapters.fileio import LOCK_NAME, OutputLock
from llm_adapters.testing import tiny_model_from_config
from llm_adapters_train.checkpoints import COMPLETE, TRAINER_STATE, latest_checkpoint
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import TrainingError, train
from tests.core import probe_plugin

from .helpers import records, save_tiny, write_json

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("probe")


def config(data: Path, out: Path, **kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = dict(
        data=str(data), output=str(out), adapter="probe", adapter_options={"rank": 4}, batch_size=4,
        micro_batch_size=2, max_steps=4, save_steps=2, logging_steps=1, warmup_steps=0, learning_rate=2e-2,
        report_to="none", progress=False, val_set_size=0, model="./no-such-model",
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def fresh():  # type: ignore[no-untyped-def]
    return tiny_model_from_config(probe_plugin.TINY_LLAMA, seed=0)


def test_an_output_that_is_a_file_fails_before_the_model_loads(tmp_path: Path, data_file: Path) -> None:
    (tmp_path / "taken").write_text("x")
    # the config names a model that does not exist: the output error must come first
    with pytest.raises(OutputError, match=r"train: the output '.*taken' is a file, not a directory"):
        train(config(data_file, tmp_path / "taken"))
    with pytest.raises(OutputError, match=r"train: '.*taken' \(above the output '.*taken/run'\) is a file"):
        train(config(data_file, tmp_path / "taken" / "run"))
    assert (tmp_path / "taken").read_text() == "x"


def test_an_unwritable_output_fails_before_the_model_loads(tmp_path: Path, data_file: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as a read-only disk answers (root ignores chmod)
    with pytest.raises(OutputError, match=r"train: the output directory '.*' is not writable \(Permission denied\)"):
        train(config(data_file, tmp_path / "out"))


def test_a_finished_adapter_is_not_overwritten_without_overwrite(tmp_path: Path, data_file: Path, tokenizer) -> None:
    out = tmp_path / "done"
    train(config(data_file, out, save_steps=100), model=fresh(), tokenizer=tokenizer)
    for ckpt in out.glob("checkpoint-*"):  # the checkpoints cleaned up: what stays is the finished adapter
        shutil.rmtree(ckpt)
    weights = (out / "adapter_model.safetensors").read_bytes()
    with pytest.raises(
        TrainingError, match=r"already holds a trained adapter \(llm_adapters_config.json\); pass --overwrite"
    ):
        train(config(data_file, out, save_steps=100), model=fresh(), tokenizer=tokenizer)
    assert (out / "adapter_model.safetensors").read_bytes() == weights
    train(config(data_file, out, save_steps=100, overwrite=True, max_steps=1), model=fresh(), tokenizer=tokenizer)
    assert (out / "adapter_model.safetensors").read_bytes() != weights


def test_a_second_writer_is_refused_at_once(tmp_path: Path, data_file: Path, tokenizer) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    with OutputLock(out, "evaluate"):
        started = time.time()
        with pytest.raises(OutputError, match=r"is being written by another run \(evaluate, pid \d+"):
            train(config(data_file, out), model=fresh(), tokenizer=tokenizer)
        assert time.time() - started < 5
    assert not (out / "llm_adapters_config.json").exists()
    train(config(data_file, out), model=fresh(), tokenizer=tokenizer)  # free again
    assert not (out / LOCK_NAME).exists()


def test_an_incomplete_checkpoint_is_skipped_on_resume(tmp_path: Path, data_file: Path, tokenizer, capsys) -> None:
    out = tmp_path / "run"
    train(config(data_file, out, max_steps=4, save_steps=2), model=fresh(), tokenizer=tokenizer)
    assert latest_checkpoint(out).name == "checkpoint-4"
    (out / "checkpoint-4" / TRAINER_STATE).write_text("")  # killed while writing the Trainer's state
    (out / "checkpoint-2" / ".adapter_model.safetensors.x1y2z3a4.tmp").write_bytes(b"half")  # an orphan temporary
    assert latest_checkpoint(out).name == "checkpoint-2"
    result = train(config(data_file, out, max_steps=4, save_steps=2, resume=True), model=fresh(), tokenizer=tokenizer)
    printed = capsys.readouterr().out
    assert "skipping" in printed and "checkpoint-4: incomplete (trainer_state.json unreadable" in printed
    assert "removed" in printed and ".adapter_model.safetensors.x1y2z3a4.tmp" in printed
    assert result.resumed_from.name == "checkpoint-2"
    assert not (out / "checkpoint-2" / ".adapter_model.safetensors.x1y2z3a4.tmp").exists()
    assert (out / "checkpoint-4" / COMPLETE).is_file()  # written again, completely


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    return env


def _run(workdir: Path, out: Path, *extra: str) -> subprocess.Popen:
    args = [
        "--model", str(workdir / "model"), "--adapter", "probe", "--data", str(workdir / "data.json"),
        "-o", "rank=4", "--batch-size", "4", "--micro-batch-size", "2", "--warmup-steps", "0", "--lr", "0.02",
        "--no-progress", "--report-to", "none", "--logging-steps", "1", "--max-steps", "8", "--save-steps", "1",
        "--val-set-size", "0", "--output", str(out), *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "tests.training.run_cli", "train", *args],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_gives_the_uninterrupted_adapter(tmp_path: Path) -> None:
    save_tiny(tmp_path / "model")
    write_json(tmp_path / "data.json", records(64))
    proc = _run(tmp_path, tmp_path / "straight")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    rng = random.Random(1234)
    for trial in range(2):
        out = tmp_path / f"killed{trial}"
        proc = _run(tmp_path, out)
        time.sleep(rng.uniform(4.0, 9.0))  # start-up, then somewhere in the run (or past its end)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        for _ in range(3):  # resume until the run finishes
            proc = _run(tmp_path, out, "--resume")
            _, err = proc.communicate(timeout=300)
            if proc.returncode == 0:
                break
        assert proc.returncode == 0, err
        got = load_file(str(out / "adapter_model.safetensors"))
        assert got.keys() == expected.keys()
        for k in expected:
            torch.testing.assert_close(got[k], expected[k], atol=1e-6, rtol=1e-5)
        assert not list(out.rglob("*.tmp")) and not (out / LOCK_NAME).exists()
        # a run killed after its last checkpoint resumes there; the Trainer may then log one more step at
        # learning rate 0 (the schedule's end), which changes no weight: the adapter above is the same
        assert json.loads((out / "metrics.json").read_text())["global_step"] in (8, 9)
