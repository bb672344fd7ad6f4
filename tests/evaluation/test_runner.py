"""The runner end to end on a scripted model whose answers are known, and on a tiny real model with
adapters: accuracies, records, summary.json, the table, the chart, the protocols."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.template import get_template
from llm_adapters_eval.config import EvalConfig
from llm_adapters_eval.generation import GenerationSettings, generate
from llm_adapters_eval.runner import run_evaluation

from .conftest import ASSETS
from .helpers import ScriptedLM, char_tokenizer, tiny_llama

REQUIRED = {"task", "prompt", "generation", "prediction", "answer", "correct"}

# Scripted replies for the SVAMP and WinoGrande fixtures, keyed by a phrase of the question.
REPLIES = {
    "Jack had 8 pens": "The answer is 5.",  # right under both rules
    "1,250 books": "The answer is 875. Check: 1,250",  # reference reads the last number, 1250
    "12 eggs": "I do not know.",  # no number at all
    "trophy": "Option 1",  # reference is case-sensitive and needs 'option1'
    "umbrella": "the correct answer is option2",
}


def reply(prompt: str) -> str:
    return next(text for key, text in REPLIES.items() if key in prompt)


def _strict_json(text: str):
    def no_constants(name: str):
        raise AssertionError(f"invalid JSON constant {name}")

    return json.loads(text, parse_constant=no_constants)


def _run(tmp_path: Path, **fields):
    tok = char_tokenizer()
    model = ScriptedLM(tok, reply)
    config = EvalConfig(
        tasks=["svamp", "WinoGrande"], data_dir=str(ASSETS), output=str(tmp_path), progress=False, **fields
    )
    summary = run_evaluation(config, model=model, tokenizer=tok)
    return summary, model


def test_accuracies_records_and_reports(tmp_path: Path) -> None:
    summary, model = _run(tmp_path, batch_size=2)
    svamp, wino = summary["tasks"]["svamp"], summary["tasks"]["winogrande"]
    assert (svamp["correct"], svamp["count"], svamp["accuracy"]) == (2, 3, pytest.approx(2 / 3))
    assert (wino["correct"], wino["count"], wino["accuracy"]) == (2, 2, 1.0)
    assert svamp["accuracy_by_scoring"] == {"reference": pytest.approx(1 / 3), "robust": pytest.approx(2 / 3)}
    assert wino["accuracy_by_scoring"] == {"reference": 0.5, "robust": 1.0}
    assert summary["scoring"] == "robust" and svamp["scoring"] == "robust" and svamp["metric"] == "accuracy"
    assert summary["average"] == pytest.approx((2 / 3 + 1) / 2)
    assert summary["settings"]["template"] == "alpaca"
    assert summary["settings"]["generation"]["svamp"]["num_beams"] == 1
    assert summary["settings"]["generation"]["svamp"]["stop_at_eos"] is True
    assert summary["adapters"] == [] and [r["label"] for r in summary["runs"]] == ["scripted"]
    # generation ran batched (one prefill per batch of 2, then the odd one out), left-padded, in eval mode,
    # stopping at EOS
    assert [c["batch"] for c in model.calls] == [2, 1, 2] and {c["step"] for c in model.calls} == {"prefill"}
    assert all(c["left_padded"] and not c["training"] for c in model.calls)

    lines = (tmp_path / "svamp.jsonl").read_text().splitlines()
    records = [_strict_json(line) for line in lines]
    assert len(records) == 3 and all(REQUIRED <= set(r) for r in records)
    assert [r["prediction"] for r in records] == [5.0, 875.0, None]
    assert [r["correct"] for r in records] == [True, True, False]
    assert [r["answer"] for r in records] == ["5.0", "875.0", "40.0"]
    assert records[0]["prompt"] == get_template("alpaca").prompt(get_task_instruction(0))
    assert records[1]["generation"] == REPLIES["1,250 books"]
    # each reply ended at its EOS (one character, one token), which the text leaves out
    assert [r["stopped_at_eos"] for r in records] == [True, True, True]
    assert [r["new_tokens"] for r in records] == [len(r["generation"]) for r in records]
    wino_records = [_strict_json(x) for x in (tmp_path / "winogrande.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in wino_records] == ["option1", "option2"]
    assert _strict_json((tmp_path / "summary.json").read_text()) == summary

    table = (tmp_path / "results.md").read_text().splitlines()
    assert table[0] == "| Model | SVAMP | WinoGrande | Avg |"
    assert table[2] == "| scripted | 66.7 | 100.0 | 83.3 |"
    assert table[4].startswith("Accuracy (%). Scoring: robust; protocol: default; template: alpaca.")
    assert table[4].endswith("Examples: SVAMP 3, WinoGrande 2.")
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reference_scoring_mode_is_recorded(tmp_path: Path) -> None:
    summary, _ = _run(tmp_path, scoring="reference")
    assert summary["scoring"] == "reference"
    assert summary["tasks"]["svamp"]["correct"] == 1 and summary["tasks"]["winogrande"]["correct"] == 1
    records = [_strict_json(x) for x in (tmp_path / "svamp.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in records] == [5.0, 1250.0, None]
    assert {r["scoring"] for r in records} == {"reference"}


def test_reference_protocol(tmp_path: Path) -> None:
    summary, model = _run(tmp_path, protocol="reference", batch_size=1)
    assert summary["scoring"] == "reference"
    gen = summary["settings"]["generation"]
    assert gen["svamp"] == {
        "max_new_tokens": 256,
        "num_beams": 4,
        "do_sample": False,
        "stop_at_eos": False,
        "skip_special_tokens": False,
    }
    assert gen["winogrande"]["max_new_tokens"] == 32 and gen["winogrande"]["skip_special_tokens"] is True
    assert summary["settings"]["template"] == "alpaca-reference-eval"
    assert {(c["num_beams"], c["eos"], c["batch"]) for c in model.calls} == {(4, None, 1)}
    assert sorted({c["max_new_tokens"] for c in model.calls}) == [32, 256]
    records = [_strict_json(x) for x in (tmp_path / "svamp.jsonl").read_text().splitlines()]
    expected = get_template("alpaca-reference-eval").prompt(get_task_instruction(0))
    assert records[0]["prompt"] == expected
    # no EOS stopping: the text after EOS is kept, as the reference kept it
    assert records[0]["generation"].startswith("The answer is 5.</s>")


def get_task_instruction(index: int) -> str:
    return la.get_task("svamp").load(ASSETS)[index].instruction


def test_loglik_method_on_multiple_choice_only(tmp_path: Path) -> None:
    tok = char_tokenizer()
    model = tiny_llama()
    config = EvalConfig(
        tasks=["winogrande", "svamp"],
        data_dir=str(ASSETS),
        output=str(tmp_path),
        progress=False,
        method="loglik",
        max_new_tokens=4,
    )
    summary = run_evaluation(config, model=model, tokenizer=tok)
    assert summary["tasks"]["winogrande"]["method"] == "loglik"
    assert summary["tasks"]["winogrande"]["scoring"] == "loglik"
    assert summary["tasks"]["svamp"]["method"] == "generate"  # open answers are still generated
    assert (
        "Scoring: log-likelihood of the options (multiple choice), robust extraction for the others;"
        in (tmp_path / "results.md").read_text()
    )
    records = [_strict_json(x) for x in (tmp_path / "winogrande.jsonl").read_text().splitlines()]
    from llm_adapters_eval.loglik import continuation_logprobs

    template = get_template("alpaca")
    for rec, ex in zip(records, la.get_task("winogrande").load(ASSETS), strict=True):
        prompt = template.prompt(ex.instruction)
        pairs = [(prompt, f"the correct answer is {label}") for label in ("option1", "option2")]
        by_hand = continuation_logprobs(model, tok, pairs, batch_size=1)
        best = "option1" if by_hand[0].logprob >= by_hand[1].logprob else "option2"
        assert rec["prediction"] == best
        assert rec["option_scores"]["option1"] == pytest.approx(by_hand[0].logprob, abs=1e-4)
        assert rec["correct"] == (best == ex.answer)


def _adapter(tmp_path: Path, name: str, seed: int) -> Path:
    model = tiny_llama()
    la.attach(model, {"type": "probe", "rank": 2})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, "default").items()):
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return la.save_adapter(model, tmp_path / name)


def test_several_adapters_side_by_side_and_the_model_restored(tmp_path: Path) -> None:
    first, second = _adapter(tmp_path, "first", 1), _adapter(tmp_path, "second", 2)
    tok, model = char_tokenizer(), tiny_llama()
    ids = tok("probe", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = model(input_ids=ids).logits
    out = tmp_path / "eval"
    config = EvalConfig(
        tasks=["svamp"],
        data_dir=str(ASSETS),
        output=str(out),
        progress=False,
        max_new_tokens=6,
        adapter_paths=[str(first), str(second)],
        include_base=True,
        batch_size=2,
    )
    summary = run_evaluation(config, model=model, tokenizer=tok)
    labels = [r["label"] for r in summary["runs"]]
    assert labels == ["LlamaForCausalLM", "LlamaForCausalLM + probe (first)", "LlamaForCausalLM + probe (second)"]
    assert summary["adapters"] == [str(first), str(second)]
    assert [r["adapter"]["type"] if r["adapter"] else None for r in summary["runs"]] == [None, "probe", "probe"]
    assert la.list_adapters(model) == []
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, before, rtol=0, atol=0)

    records = [_strict_json(x) for x in (out / "svamp.jsonl").read_text().splitlines()]
    assert len(records) == 3 * 3
    by_run = {}
    for rec in records:
        by_run.setdefault(rec["run"], []).append(rec["generation"])
    # each adapter's generations are what that adapter alone produces
    fresh = tiny_llama()
    la.load_adapter(fresh, second)
    prompts = [r["prompt"] for r in records if r["run"] == labels[2]]
    alone = generate(fresh, tok, prompts, GenerationSettings(max_new_tokens=6))
    assert by_run[labels[2]] == [g.text for g in alone]
    assert by_run[labels[0]] != by_run[labels[2]], "the adapter changes the generations"
    table = (out / "results.md").read_text().splitlines()
    assert len([line for line in table if line.startswith("| ")]) == 1 + 3


def test_missing_data_fails_before_the_model_loads(tmp_path: Path) -> None:
    from llm_adapters.task import TaskDataError

    config = EvalConfig(tasks=["hellaswag"], data_dir=str(tmp_path), output=str(tmp_path / "o"), model="/nonexistent")
    with pytest.raises(TaskDataError, match="data file not found"):
        run_evaluation(config)
    assert not (tmp_path / "o").exists()


def test_config_validation_messages() -> None:
    from llm_adapters.errors import ConfigError
    from llm_adapters_eval.config import build_eval_config

    with pytest.raises(
        ConfigError, match=r"evaluate config: batch_size: input should be greater than or equal to 1, got 0"
    ):
        build_eval_config(None, {"tasks": "gsm8k", "output": "x", "batch_size": 0})
    with pytest.raises(ConfigError, match="unknown field 'beams'"):
        build_eval_config(None, {"tasks": "gsm8k", "output": "x", "beams": 2})
    cfg = build_eval_config(None, {"tasks": ("gsm8k,svamp", "aqua"), "output": "x"})
    assert cfg.tasks == ["gsm8k", "svamp", "aqua"]


def test_config_file_and_flags(tmp_path: Path) -> None:
    from llm_adapters_eval.config import build_eval_config

    path = tmp_path / "eval.yaml"
    path.write_text("tasks: [gsm8k]\noutput: out\nbatch_size: 4\nprotocol: reference\n")
    cfg = build_eval_config(str(path), {"batch_size": 8, "limit": None})
    assert (cfg.batch_size, cfg.protocol, cfg.scoring_mode, cfg.template_name) == (
        8,
        "reference",
        "reference",
        "alpaca-reference-eval",
    )


def test_nothing_to_evaluate(tmp_path: Path) -> None:
    from llm_adapters.errors import ConfigError

    config = EvalConfig(tasks=["svamp"], data_dir=str(ASSETS), output=str(tmp_path), include_base=False)
    with pytest.raises(ConfigError, match="nothing to evaluate: include_base is false and no adapter path was given"):
        run_evaluation(config)  # fails before loading the (embedded) model
