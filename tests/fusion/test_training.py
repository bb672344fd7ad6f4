"""Training a fusion through the training plugin's train() and through `llm-adapters fuse`, and reloading it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner

import llm_adapters as la
from llm_adapters.cli import build_cli
from llm_adapters.testing import tiny_tokenizer
from llm_adapters_train.run_config import TrainConfig
from llm_adapters_train.training import train

from .conftest import tiny_llama


def _data(path: Path) -> Path:
    recs = [{"instruction": f"Add {i} and {i}.", "input": "", "output": f"The answer is {2 * i}."} for i in range(16)]
    path.write_text(json.dumps(recs))
    return path


def test_train_lowers_the_loss_and_the_fusion_reloads(adapter_dirs: dict[str, Path], tmp_path: Path) -> None:
    paths = [str(adapter_dirs["p1"]), str(adapter_dirs["p2"])]
    config = TrainConfig(
        adapter="fusion", adapter_options={"adapters": paths}, data=str(_data(tmp_path / "d.json")),
        output=str(tmp_path / "out"), max_steps=8, batch_size=4, micro_batch_size=4, learning_rate=3e-2,
        warmup_steps=0, logging_steps=1, save_steps=100, report_to="none", progress=False, seed=0,
    )  # fmt: skip
    model, tok = tiny_llama(), tiny_tokenizer()
    result = train(config, model=model, tokenizer=tok)
    losses = [e["loss"] for e in result.metrics["log_history"] if "loss" in e]
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses

    saved = json.loads((result.output_dir / "llm_adapters_config.json").read_text())
    assert saved["adapter_type"] == "fusion" and saved["config"]["adapters"] == paths
    from safetensors.torch import load_file

    keys = load_file(str(result.output_dir / "adapter_model.safetensors"))
    assert keys and all(k.rsplit(".", 2)[-2] in ("query", "key", "value") for k in keys)

    model.eval()
    ids = torch.randint(3, 100, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(input_ids=ids).logits
    fresh = tiny_llama()
    la.load_adapter(fresh, result.output_dir)
    with torch.no_grad():
        got = fresh(input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_fuse_command(adapter_dirs: dict[str, Path], tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny"
    tiny_llama().save_pretrained(model_dir)
    tiny_tokenizer().save_pretrained(model_dir)
    out = tmp_path / "fusion"
    args = ["fuse", "--adapter-path", str(adapter_dirs["p1"]), "--adapter-path", str(adapter_dirs["p2"]),
            "--data", str(_data(tmp_path / "d.json")), "--output", str(out), "--model", str(model_dir),
            "--max-steps", "2", "--batch-size", "4", "--micro-batch-size", "4", "--no-progress",
            "--temperature", "2.0"]  # fmt: skip
    result = CliRunner().invoke(build_cli(), args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "llm_adapters_config.json").read_text())
    assert saved["config"]["temperature"] == 2.0
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 2
    bad = CliRunner().invoke(build_cli(), [*args[:3], *args[5:9], "--output", str(tmp_path / "o2")])
    assert bad.exit_code != 0 and "at least 2" in bad.output, bad.output
