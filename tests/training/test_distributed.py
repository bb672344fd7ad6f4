"""Two processes (torchrun, gloo on CPU) with half the micro-batches each end with the same adapter as one
process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .helpers import records, save_tiny, write_json

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _run(cmd: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    # a session of its own, so that a hang (torchrun and both workers) can be killed as a group
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return stdout


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which(str(TORCHRUN)), reason="torchrun is not installed")
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    save_tiny(tmp_path / "model")
    write_json(tmp_path / "data.json", records(64))
    args = [
        "train", "--model", str(tmp_path / "model"), "--adapter", "probe", "--data", str(tmp_path / "data.json"),
        "-o", "rank=4", "--batch-size", "8", "--micro-batch-size", "2", "--max-steps", "4", "--warmup-steps", "0",
        "--lr", "0.02", "--save-steps", "100", "--logging-steps", "1", "--no-progress", "--report-to", "none",
    ]  # fmt: skip
    _run([sys.executable, "-m", "tests.training.run_cli", *args, "--output", str(tmp_path / "one")])
    out = _run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "tests.training.run_cli", *args,
         "--output", str(tmp_path / "two")]
    )  # fmt: skip
    assert "2 process(es), gradient accumulation 2" in out

    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert (one["world_size"], one["gradient_accumulation_steps"]) == (1, 4)
    assert (two["world_size"], two["gradient_accumulation_steps"]) == (2, 2)
    losses = [[e["loss"] for e in m["log_history"] if "loss" in e] for m in (one, two)]
    assert len(losses[0]) == 4
    for a, b in zip(*losses, strict=True):
        assert abs(a - b) < 1e-4, losses

    a = load_file(str(tmp_path / "one" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "two" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert max(t.abs().max().item() for t in a.values()) > 1e-2, "the adapter must have moved from its init"
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=1e-4)
