"""A catalogue of bad inputs, run through the real command line as a user would: each gives exit code 1 (2
for usage errors), one clear message naming the problem, no traceback, and leaves every file that was there
before exactly as it was."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.training.helpers import records, save_tiny, write_json

CLI = shutil.which("llm-adapters", path=str(Path(sys.executable).parent)) or "llm-adapters"
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "tasks"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LLaMA saved to disk, training data, and a trained LoRA adapter on it."""
    from transformers import AutoModelForCausalLM

    import llm_adapters as la

    w = tmp_path_factory.mktemp("world")
    save_tiny(w / "model")
    write_json(w / "data.json", records(16))
    model = AutoModelForCausalLM.from_pretrained(w / "model")
    la.attach(model, {"type": "lora", "r": 2, "target_modules": ["q_proj", "v_proj"]})
    la.save_adapter(model, w / "adapter")
    return w


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a digest of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("LLM_ADAPTERS_")}
    full.update(env, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    return subprocess.run([CLI, *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=300)


@dataclass
class Case:
    name: str
    args: Callable[[Path, Path], list[str]]  # (world, scratch) -> arguments
    message: str
    setup: Callable[[Path, Path], None] = lambda w, s: None
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)


def _train(w: Path, out: Path, *extra: str, data: Path | None = None) -> list[str]:
    return [
        "train", "--model", str(w / "model"), "--adapter", "lora", "--data", str(data or w / "data.json"),
        "--output", str(out), "--max-steps", "1", "--batch-size", "2", "--micro-batch-size", "2",
        "--val-set-size", "0", "--no-progress", "--report-to", "none", *extra,
    ]  # fmt: skip


def _bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _adapter_copy(w: Path, s: Path, name: str) -> Path:
    shutil.copytree(w / "adapter", s / name)
    return s / name


def _bad_tensors(w: Path, s: Path, name: str, make: Callable[[torch.Tensor], torch.Tensor]) -> None:
    from safetensors.torch import load_file

    d = _adapter_copy(w, s, name)
    tensors = {k: make(v) for k, v in load_file(str(d / "adapter_model.safetensors")).items()}
    save_file(tensors, str(d / "adapter_model.safetensors"))


def _model_copy(w: Path, s: Path, name: str) -> Path:
    shutil.copytree(w / "model", s / name)
    return s / name


def _pickled_model(w: Path, s: Path) -> None:
    d = _model_copy(w, s, "pickled")
    (d / "model.safetensors").unlink()
    torch.save({"planted": torch.zeros(1)}, d / "pytorch_model.bin")


def _truncated_model(w: Path, s: Path) -> None:
    d = _model_copy(w, s, "truncated")
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 3])


def _string_config(w: Path, s: Path) -> None:
    d = _adapter_copy(w, s, "stringcfg")
    meta = json.loads((d / "adapter_config.json").read_text())
    (meta["llm_adapters"] if "llm_adapters" in meta else meta)["config"] = "lora"  # LoRA: PEFT's layout, ours inside
    (d / "adapter_config.json").write_text(json.dumps(meta))


CASES = [
    Case("missing data", lambda w, s: _train(w, s / "out", data=s / "nope.json"), "nope.json"),
    Case(
        "non-UTF-8 data",
        lambda w, s: _train(w, s / "out", data=s / "latin1.json"),
        "UTF-8",
        setup=lambda w, s: _bytes(s / "latin1.json", '[{"instruction": "caf\xe9", "output": "x"}]'.encode("latin-1")),
    ),
    Case("misspelt template", lambda w, s: _train(w, s / "out", "--template", "alpacca"), "unknown prompt template"),
    Case("boolean rank", lambda w, s: _train(w, s / "out", "-o", "r=true"), "r: "),
    Case("duplicate option", lambda w, s: _train(w, s / "out", "-o", "r=4", "-o", "r=8"), "given twice (4 and 8)"),
    Case(
        "output is a file",
        lambda w, s: _train(w, s / "taken"),
        "is a file, not a directory",
        setup=lambda w, s: _bytes(s / "taken", b"mine"),
    ),
    Case(
        "finished adapter in the output",
        lambda w, s: _train(w, s / "finished"),
        "already holds a trained adapter",
        setup=lambda w, s: _adapter_copy(w, s, "finished") and None,
    ),
    Case(
        "export into a folder of other files",
        lambda w, s: [
            "export",
            "--model",
            str(w / "model"),
            "--adapter-path",
            str(w / "adapter"),
            "--output",
            str(s / "docs"),
        ],  # fmt: skip
        "is not empty",
        setup=lambda w, s: _bytes(s / "docs" / "thesis.txt", b"years of work"),
    ),
    Case(
        "export into the current directory",
        lambda w, s: ["export", "--model", str(w / "model"), "--adapter-path", str(w / "adapter"), "--output", "."],
        "current directory",
        setup=lambda w, s: _bytes(s / "notes.txt", b"keep"),
    ),
    Case(
        "adapter config stored as a string",
        lambda w, s: ["generate", "--model", str(w / "model"), "--adapter-path", str(s / "stringcfg"), "Hi"],
        "adapter_config.json",
        setup=_string_config,
    ),
    Case(
        "NaN adapter weights",
        lambda w, s: ["generate", "--model", str(w / "model"), "--adapter-path", str(s / "nan"), "Hi"],
        "non-finite",
        setup=lambda w, s: _bad_tensors(w, s, "nan", lambda t: torch.full_like(t, float("nan"))),
    ),
    Case(
        "integer adapter weights",
        lambda w, s: ["generate", "--model", str(w / "model"), "--adapter-path", str(s / "ints"), "Hi"],
        "floating-point",
        setup=lambda w, s: _bad_tensors(w, s, "ints", lambda t: t.to(torch.int64)),
    ),
    Case(
        "a planted pickle in a model folder",
        lambda w, s: ["generate", "--model", str(s / "pickled"), "Hi"],
        "never loads pickles",
        setup=_pickled_model,
    ),
    Case(
        "a truncated model file",
        lambda w, s: ["generate", "--model", str(s / "truncated"), "Hi"],
        "model.safetensors",
        setup=_truncated_model,
    ),
    Case(
        "a corrupt GGUF file",
        lambda w, s: ["generate", "--model", str(s / "broken.gguf"), "Hi"],
        "not a readable GGUF file",
        setup=lambda w, s: _bytes(s / "broken.gguf", b"GGUF\x03\x00\x00\x00garbage"),
    ),
    Case(
        "a plugin allow-list naming nothing installed, strict",
        lambda w, s: ["plugins"],
        "LLM_ADAPTERS_PLUGINS names 'lorra'",
        env={"LLM_ADAPTERS_PLUGINS": "lorra,llm-adapters-families", "LLM_ADAPTERS_STRICT_PLUGINS": "1"},
    ),
    Case(
        "an unknown type while an allow-list filters plugins",
        lambda w, s: _train(w, s / "out"),
        "LLM_ADAPTERS_PLUGINS",
        env={"LLM_ADAPTERS_PLUGINS": "llm-adapters-families,llm-adapters-templates,llm-adapters-train"},
    ),
    Case("an unknown command", lambda w, s: ["trian"], "No such command 'trian'", code=2),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clear_error_and_loses_nothing(case: Case, world: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    case.setup(world, scratch)
    before_scratch, before_world = tree(scratch), tree(world)
    result = run(case.args(world, scratch), cwd=scratch, **case.env)
    text = result.stdout + result.stderr
    assert result.returncode == case.code, text
    assert case.message in text, text
    assert "Traceback" not in text, text
    assert "weights_only=False" not in text, text
    assert tree(world) == before_world
    after = tree(scratch)
    assert {k: v for k, v in after.items() if k in before_scratch} == before_scratch, "a file there before changed"
