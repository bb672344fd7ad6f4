"""``llm-adapters evaluate`` and ``generate`` in process, on a tiny model saved to disk, with and without
an adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import llm_adapters as la
from llm_adapters.cli import build_cli
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import ConfigError
from llm_adapters.template import get_template
from llm_adapters_eval.generation import GenerationSettings, generate

from .conftest import ASSETS
from .helpers import char_tokenizer, save_tiny, tiny_llama


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return save_tiny(tmp_path / "tiny-llama")


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    model = tiny_llama()
    la.attach(model, {"type": "probe", "rank": 2})
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, "default").items()):
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return la.save_adapter(model, tmp_path / "probe-adapter")


def _invoke(args: list[str], input: str | None = None):
    result = CliRunner().invoke(build_cli(), args, input=input, catch_exceptions=False)
    return result


def test_evaluate_with_and_without_an_adapter(tmp_path: Path, tiny_dir: Path, adapter_dir: Path) -> None:
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--model",
        str(tiny_dir),
        "--task",
        "svamp,WinoGrande",
        "--data-dir",
        str(ASSETS),
        "--limit",
        "2",
        "--batch-size",
        "2",
        "--max-new-tokens",
        "5",
        "--output",
        str(out),
        "--no-progress",
        "--adapter-path",
        str(adapter_dir),
        "--include-base",
    ]
    result = _invoke(args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [r["label"] for r in summary["runs"]] == ["tiny-llama", "tiny-llama + probe (probe-adapter)"]
    assert summary["tasks"]["svamp"]["count"] == 2 and summary["tasks"]["winogrande"]["count"] == 2
    assert summary["adapters"] == [str(adapter_dir)]
    assert summary["settings"]["batch_size"] == 2 and summary["settings"]["limit"] == 2
    assert "| Model | SVAMP | WinoGrande | Avg |" in result.output
    assert (out / "results.png").is_file()
    records = [json.loads(x) for x in (out / "svamp.jsonl").read_text().splitlines()]
    assert len(records) == 4
    # the adapter run's generations are what the adapter, loaded by hand, produces
    model, tok = tiny_llama(), char_tokenizer()
    la.load_adapter(model, adapter_dir)
    prompts = [get_template("alpaca").prompt(ex.instruction) for ex in la.get_task("svamp").load(ASSETS, 2)]
    expected = [g.text for g in generate(model, tok, prompts, GenerationSettings(max_new_tokens=5))]
    assert [r["generation"] for r in records if r["run"].endswith("(probe-adapter)")] == expected


def test_evaluate_config_file_and_errors(tmp_path: Path, tiny_dir: Path) -> None:
    config = tmp_path / "eval.json"
    config.write_text(
        json.dumps(
            {
                "model": str(tiny_dir),
                "tasks": ["mawps"],
                "data_dir": str(ASSETS),
                "output": str(tmp_path / "o"),
                "max_new_tokens": 3,
                "progress": False,
            }
        )
    )
    result = _invoke(["evaluate", "--config", str(config), "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["tasks"]["mawps"]["count"] == 1

    missing = CliRunner().invoke(build_cli(), ["evaluate", "--output", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "give --task" in missing.output


def test_generate_one_prompt_streams_the_training_template(tiny_dir: Path) -> None:
    result = _invoke(["generate", "--model", str(tiny_dir), "--max-new-tokens", "6", "What is 2 + 3?"])
    assert result.exit_code == 0, result.output
    model, tok = tiny_llama(), char_tokenizer()
    prompt = get_template("alpaca").prompt("What is 2 + 3?")
    (expected,) = generate(model, tok, [prompt], GenerationSettings(max_new_tokens=6))
    assert result.stdout == tok.decode(expected.token_ids, skip_special_tokens=True) + "\n"


def test_generate_loop_reads_instructions_until_exit(tiny_dir: Path, adapter_dir: Path) -> None:
    result = _invoke(
        ["generate", "--model", str(tiny_dir), "--adapter-path", str(adapter_dir), "--max-new-tokens", "4"],
        input="First question\n\nSecond question\nexit\nnever read\n",
    )
    assert result.exit_code == 0, result.output
    model, tok = tiny_llama(), char_tokenizer()
    la.load_adapter(model, adapter_dir)
    template = get_template("alpaca")
    outs = generate(
        model,
        tok,
        [template.prompt("First question"), template.prompt("Second question")],
        GenerationSettings(max_new_tokens=4),
    )
    assert result.stdout == "".join(tok.decode(o.token_ids, skip_special_tokens=True) + "\n" for o in outs)


def _sampled_by_transformers(prompt: str, seed: int, new: int, **sampling: float) -> str:
    """transformers' own sampling on the same tiny model after ``torch.manual_seed(seed)``: the reference
    for a seeded answer, cut at EOS and decoded without special tokens."""
    model, tok = tiny_llama(), char_tokenizer()
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    torch.manual_seed(seed)
    out = model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, do_sample=True, pad_token_id=0,
        eos_token_id=[tok.eos_token_id], **sampling,
    )[0, ids.shape[1] :].tolist()  # fmt: skip
    if tok.eos_token_id in out:
        out = out[: out.index(tok.eos_token_id)]
    return tok.decode(out, skip_special_tokens=True)


def test_generate_samples_with_a_seed_as_transformers_does(tiny_dir: Path) -> None:
    args = ["generate", "--model", str(tiny_dir), "--max-new-tokens", "12", "--temperature", "1.2"]
    args += ["--top-k", "40", "--top-p", "0.95", "--seed", "11", "What is 2 + 3?"]
    first, again = _invoke(args), _invoke(args)
    assert first.exit_code == 0, first.output
    prompt = get_template("alpaca").prompt("What is 2 + 3?")
    expected = _sampled_by_transformers(prompt, 11, 12, temperature=1.2, top_k=40, top_p=0.95)
    assert first.stdout == again.stdout == expected + "\n"
    greedy = _invoke(["generate", "--model", str(tiny_dir), "--max-new-tokens", "12", "What is 2 + 3?"])
    assert greedy.stdout != first.stdout, "temperature above 0 samples"


def test_generate_stops_at_a_stop_string(tiny_dir: Path) -> None:
    base = ["generate", "--model", str(tiny_dir), "--max-new-tokens", "12"]
    full = _invoke([*base, "What is 2 + 3?"]).stdout[:-1]
    stop = full[3:5]
    cut = _invoke([*base, "--stop", "\u2603", "--stop", stop, "What is 2 + 3?"])
    assert cut.exit_code == 0, cut.output
    assert cut.stdout == full[: full.index(stop)] + "\n"


def test_generate_refuses_bad_sampling_options_before_loading(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-model")
    bad_p = CliRunner().invoke(build_cli(), ["generate", "--model", missing, "--top-p", "0", "hi"])
    assert bad_p.exit_code == 2 and "Invalid value for '--top-p'" in bad_p.output
    bad_t = CliRunner().invoke(build_cli(), ["generate", "--model", missing, "--temperature", "-1", "hi"])
    assert bad_t.exit_code == 2 and "Invalid value for '--temperature'" in bad_t.output
    mixed = CliRunner().invoke(build_cli(), ["generate", "--model", missing, "--num-beams", "2", "--temperature", "1"])
    assert isinstance(mixed.exception, ConfigError)  # not a missing model: it fails before the model loads
    assert "beam search (num_beams=2) is deterministic and takes no sampling or stop strings" in str(mixed.exception)
