"""``llm-adapters train`` end to end in subprocesses: outputs, help, errors, Ctrl-C / kill and --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import llm_adapters as la
from llm_adapters.cli import build_cli
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import latest_checkpoint
from tests.core import probe_plugin

from .helpers import records, save_tiny, write_json

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("probe")


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    return env


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_stray_processes():
    """A test that fails half-way must not leave a training process running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _cli(*args: str, **kw) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.training.run_cli", "train", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell that runs the suite in the background starts it with SIGINT ignored, and children inherit
        # that; give the training process the default Ctrl-C behaviour a terminal user has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kw,
    )
    _STARTED.append(proc)
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    save_tiny(d / "model")
    write_json(d / "data.json", records(64))
    return d


def _common(d: Path) -> list[str]:
    return [
        "--model", str(d / "model"), "--adapter", "probe", "--data", str(d / "data.json"),
        "-o", "rank=4", "--batch-size", "4", "--micro-batch-size", "2", "--warmup-steps", "0",
        "--lr", "0.02", "--no-progress", "--report-to", "none", "--logging-steps", "1",
    ]  # fmt: skip


def _load(path: Path) -> torch.nn.Module:
    from llm_adapters.testing import tiny_model_from_config

    model = tiny_model_from_config(probe_plugin.TINY_LLAMA)
    la.load_adapter(model, path)
    return model


def test_help_documents_every_option() -> None:
    result = CliRunner().invoke(build_cli(), ["train", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in TrainConfig.model_fields:
        flag = "--option" if name == "adapter_options" else f"--{name.replace('_', '-')}"
        assert flag in result.output, flag
    for required in ("--model", "--adapter", "--data", "--output", "--max-steps", "--batch-size", "-o,"):
        assert required in result.output


def test_config_file_with_flags_trains_and_writes_outputs(workdir: Path, tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        f"model: {workdir / 'model'}\nadapter: probe\nadapter_options: {{rank: 8}}\ndata: {workdir / 'data.json'}\n"
        "batch_size: 8\nmicro_batch_size: 2\nmax_steps: 50\nwarmup_steps: 0\nreport_to: none\nprogress: false\n"
    )
    out = tmp_path / "out"
    proc = _cli(str(tmp_path / "run.yaml"), "--output", str(out), "--max-steps", "3", "-o", "rank=2")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "done: 3 steps" in stdout and f"adapter:  {out}" in stdout
    config = json.loads((out / "train_config.json").read_text())
    assert config["max_steps"] == 3 and config["batch_size"] == 8 and config["adapter_options"] == {"rank": 2}
    assert json.loads((out / "metrics.json").read_text())["gradient_accumulation_steps"] == 4
    assert json.loads((out / "llm_adapters_config.json").read_text())["config"]["rank"] == 2
    _load(out)


def test_errors_are_one_clear_line(workdir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    cli = build_cli()
    r = runner.invoke(cli, ["train", "--output", str(tmp_path / "o")])
    assert r.exit_code == 1 and "train config: data: required but not given" in r.output
    args = [a if a != "rank=4" else "rank=0" for a in _common(workdir)]
    r = runner.invoke(cli, ["train", *args, "--output", str(tmp_path / "o")])
    assert r.exit_code == 1 and "adapter 'probe': rank: input should be greater than or equal to 1, got 0" in r.output
    r = runner.invoke(cli, ["train", *_common(workdir), "--output", str(tmp_path / "o"), "-o", "rank"])
    assert r.exit_code == 1 and "option 'rank' must look like key=value" in r.output
    r = runner.invoke(cli, ["train", *_common(workdir), "--data", str(tmp_path / "none.json"), "--output", "o"])
    assert r.exit_code == 1 and "none.json: no such file or directory" in r.output


def _run_until_checkpoint(workdir: Path, out: Path) -> subprocess.Popen:
    proc = _cli(*_common(workdir), "--output", str(out), "--max-steps", "100000", "--save-steps", "5")
    deadline = time.time() + 240
    while latest_checkpoint(out) is None or latest_checkpoint(out).name == "checkpoint-5":
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "no checkpoint in time"
        time.sleep(0.2)
    return proc


@pytest.mark.slow
def test_ctrl_c_leaves_the_last_checkpoint_loadable(workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "int"
    proc = _run_until_checkpoint(workdir, out)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    last = latest_checkpoint(out)
    assert f"the last checkpoint is {last} (resume with --resume)" in stderr
    assert "training interrupted at step" in stderr
    _load(last)


@pytest.mark.slow
def test_kill_leaves_the_last_checkpoint_loadable_and_resume_continues(workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "kill"
    proc = _run_until_checkpoint(workdir, out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    last = latest_checkpoint(out)
    _load(last)
    step = int(last.name.split("-")[1])
    # a checkpoint cut short while being written is skipped
    (out / f"checkpoint-{step + 100}").mkdir()
    (out / f"checkpoint-{step + 100}" / "adapter_model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(out) == last

    proc = _cli(*_common(workdir), "--output", str(out), "--max-steps", str(step + 2), "--save-steps", "100000",
                "--resume")  # fmt: skip
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"resuming from {last}" in stdout and f"done: {step + 2} steps" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"] == str(last) and metrics["global_step"] == step + 2
    trained = [e["step"] for e in metrics["log_history"] if "loss" in e]
    assert trained[-2:] == [step + 1, step + 2]
