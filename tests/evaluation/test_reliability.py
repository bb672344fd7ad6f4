"""Reliability of ``evaluate``: every finished run is on disk before the next one starts, a failed run is
recorded and the others go on, the output directory is checked before the model loads, and bad data (an empty
test set, an answer outside the task's labels, bytes that are not UTF-8) is one clear error naming the file.
The command-line cases run through ``llm_adapters.cli.main``: exit code 1, one ``Error:`` line, no traceback."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import llm_adapters as la
import llm_adapters_eval
import llm_adapters_gguf
import llm_adapters_templates
from llm_adapters import hookimpl
from llm_adapters.cli import ENV_DEBUG, main
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterFileError, OutputError
from llm_adapters.task import Example, Task, TaskDataError
from llm_adapters.testing import use_plugins
from llm_adapters_eval import runner
from llm_adapters_eval.config import EvalConfig
from llm_adapters_eval.runner import EvaluationError, run_evaluation
from llm_adapters_tasks import commonsense_tasks, math_tasks
from tests.core import probe_plugin

from .conftest import ASSETS
from .helpers import char_tokenizer, save_tiny, tiny_llama

BASE = "LlamaForCausalLM"  # the run label of a model given to run_evaluation


# ---- helpers ----------------------------------------------------------------------------------------------
def _adapter(directory: Path, seed: int, **model_overrides: Any) -> Path:
    """A probe adapter with random weights, saved from a tiny LLaMA (``model_overrides`` change its shape)."""
    model = tiny_llama(**model_overrides)
    la.attach(model, {"type": "probe", "rank": 2})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, "default").items()):
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return la.save_adapter(model, directory)


def _corrupt(directory: Path) -> Path:
    """An adapter directory whose weights file is not safetensors."""
    path = _adapter(directory, 3)
    (path / "adapter_model.safetensors").write_bytes(b"this is not a safetensors file")
    return path


def _load_error(path: Path) -> str:
    """What loading the adapter ``path`` onto the tiny LLaMA says, in one line (what a failed run records)."""
    with pytest.raises(AdapterFileError) as err:
        la.load_adapter(tiny_llama(), path)
    return " ".join(str(err.value).split())


def _config(out: Path, **fields: Any) -> EvalConfig:
    base: dict[str, Any] = {"tasks": ["svamp"], "data_dir": str(ASSETS), "output": str(out), "progress": False}
    base.update(max_new_tokens=3, limit=2)
    base.update(fields)
    return EvalConfig(**base)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run ``llm-adapters ARGS`` as the console script does; (exit code, stdout + stderr)."""
    monkeypatch.delenv(ENV_DEBUG, raising=False)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() installs its own
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _evaluate_args(model: str | Path, data_dir: str | Path, out: Path, task: str = "svamp") -> list[str]:
    return [
        "evaluate",
        "--model",
        str(model),
        "--task",
        task,
        "--data-dir",
        str(data_dir),
        "--output",
        str(out),
        "--max-new-tokens",
        "3",
        "--limit",
        "2",
        "--no-progress",
    ]


def _dataset(root: Path, folder: str, content: bytes | list[Any]) -> Path:
    path = root / "dataset" / folder / "test.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


# ---- 1. writing as it goes ----------------------------------------------------------------------------------
def test_each_finished_run_is_on_disk_before_the_next_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _adapter(tmp_path / "first", 1)
    out = tmp_path / "eval"
    seen: dict[str, dict[str, Any]] = {}
    real = runner.evaluate_task

    def spy(model, tokenizer, task, examples, config, template, *, run=""):  # type: ignore[no-untyped-def]
        if run not in seen:  # what is on disk when the run starts
            summary = out / "summary.json"
            seen[run] = {
                "summary": json.loads(summary.read_text()) if summary.exists() else None,
                "svamp": _records(out / "svamp.jsonl") if (out / "svamp.jsonl").exists() else None,
                "table": (out / "results.md").read_text() if (out / "results.md").exists() else None,
                "chart": (out / "results.png").exists(),
            }
        return real(model, tokenizer, task, examples, config, template, run=run)

    monkeypatch.setattr(runner, "evaluate_task", spy)
    config = _config(out, tasks=["svamp", "winogrande"], adapter_paths=[str(first)], include_base=True)
    summary = run_evaluation(config, model=tiny_llama(), tokenizer=char_tokenizer())

    adapted = f"{BASE} + probe (first)"
    assert [r["label"] for r in summary["runs"]] == [BASE, adapted]
    assert seen[BASE] == {"summary": None, "svamp": None, "table": None, "chart": False}
    before = seen[adapted]
    assert [r["label"] for r in before["summary"]["runs"]] == [BASE]
    assert before["summary"]["runs"][0] == summary["runs"][0]
    assert (before["summary"]["pending"], before["summary"]["failed"]) == ([adapted], [])
    assert [r["run"] for r in before["svamp"]] == [BASE, BASE]
    assert f"\nNot evaluated yet: {adapted}.\n" in before["table"]
    assert before["chart"] is False  # the chart waits for the end
    # at the end: everything, the chart included, and no trace of the write check
    assert (summary["pending"], summary["failed"]) == ([], [])
    assert json.loads((out / "summary.json").read_text()) == summary
    assert [r["run"] for r in _records(out / "svamp.jsonl")] == [BASE, BASE, adapted, adapted]
    assert "Not evaluated yet" not in (out / "results.md").read_text()
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".write-test.*")) and not (out / ".llm-adapters.lock").exists()


def test_a_failed_run_is_recorded_and_the_other_runs_go_on(tmp_path: Path) -> None:
    good = _adapter(tmp_path / "good", 1)
    misfit = _adapter(tmp_path / "misfit", 2, intermediate_size=48)  # trained on another base model
    corrupt = _corrupt(tmp_path / "corrupt")
    later = _adapter(tmp_path / "later", 4)
    out = tmp_path / "eval"
    model, tok = tiny_llama(), char_tokenizer()
    lines: list[str] = []
    config = _config(out, adapter_paths=[str(p) for p in (good, misfit, corrupt, later)], include_base=True)
    with pytest.raises(EvaluationError) as err:
        run_evaluation(config, model=model, tokenizer=tok, echo=lines.append)

    labels = [BASE, *(f"{BASE} + probe ({name})" for name in ("good", "misfit", "corrupt", "later"))]
    misfit_error, corrupt_error = _load_error(misfit), _load_error(corrupt)
    assert misfit_error.startswith(f"{misfit}: this adapter was trained on a different base model")
    assert corrupt_error.startswith(f"{corrupt / 'adapter_model.safetensors'}: not a readable safetensors file")
    assert str(err.value) == (
        f"2 of 5 evaluation run(s) failed: {labels[2]}: {misfit_error}; {labels[3]}: {corrupt_error}. "
        f"The other runs' results and these errors are in {out}"
    )
    assert f"{labels[2]}: run 3 of 5 FAILED: {misfit_error}" in lines
    assert f"{labels[3]}: run 4 of 5 FAILED: {corrupt_error}" in lines
    assert la.list_adapters(model) == []  # nothing left attached by the failed loads

    summary = json.loads((out / "summary.json").read_text())
    assert err.value.summary == summary
    assert [r["label"] for r in summary["runs"]] == labels
    assert [r["error"] for r in summary["runs"]] == [None, None, misfit_error, corrupt_error, None]
    assert summary["failed"] == [labels[2], labels[3]] and summary["pending"] == []
    assert [r["tasks"] for r in summary["runs"][2:4]] == [{}, {}]
    assert [r["average"] is None for r in summary["runs"]] == [False, False, True, True, False]
    assert all(r["tasks"]["svamp"]["count"] == 2 for r in (summary["runs"][i] for i in (0, 1, 4)))
    assert [r["run"] for r in _records(out / "svamp.jsonl")] == [
        x for x in (labels[0], labels[1], labels[4]) for _ in "ab"
    ]
    table = (out / "results.md").read_text()
    assert f"| {labels[2]} | failed | - |" in table.splitlines()
    assert f"\nFailed: {labels[3]}: {corrupt_error}\n" in table
    assert (out / "results.png").is_file()


def test_a_run_failing_midway_keeps_the_tasks_it_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = runner.evaluate_task

    def flaky(model, tokenizer, task, examples, config, template, *, run=""):  # type: ignore[no-untyped-def]
        if task.name == "winogrande":
            raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")
        return real(model, tokenizer, task, examples, config, template, run=run)

    monkeypatch.setattr(runner, "evaluate_task", flaky)
    out = tmp_path / "eval"
    with pytest.raises(EvaluationError) as err:
        run_evaluation(_config(out, tasks=["svamp", "winogrande"]), model=tiny_llama(), tokenizer=char_tokenizer())
    error = "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"
    assert (
        str(err.value)
        == f"1 of 1 evaluation run(s) failed: {BASE}: {error}. The other runs' results and these errors are in {out}"
    )
    (run,) = json.loads((out / "summary.json").read_text())["runs"]
    assert (run["error"], list(run["tasks"]), run["average"]) == (error, ["svamp"], None)
    assert len(_records(out / "svamp.jsonl")) == 2 and (out / "winogrande.jsonl").read_text() == ""
    assert (
        f"| {BASE} | {100 * run['tasks']['svamp']['accuracy']:.1f} | failed | - |" in (out / "results.md").read_text()
    )
    assert not (out / "results.png").exists()  # no run finished: no chart


def test_cli_failed_run_exits_1_and_keeps_the_finished_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = save_tiny(tmp_path / "tiny-llama")
    good, corrupt = _adapter(tmp_path / "good", 1), _corrupt(tmp_path / "corrupt")
    out = tmp_path / "eval"
    args = _evaluate_args(tiny, ASSETS, out)
    args += ["--adapter-path", str(corrupt), "--adapter-path", str(good), "--include-base"]
    code, output = _cli(args, capsys, monkeypatch)

    corrupt_error = _load_error(corrupt)
    assert code == 1 and "Traceback" not in output
    assert f"tiny-llama + probe (corrupt): run 2 of 3 FAILED: {corrupt_error}\n" in output
    assert output.endswith(
        f"Error: 1 of 3 evaluation run(s) failed: tiny-llama + probe (corrupt): {corrupt_error}. "
        f"The other runs' results and these errors are in {out}\n"
    )
    assert "| tiny-llama + probe (good) |" in output  # the finished runs' table is shown
    summary = json.loads((out / "summary.json").read_text())
    assert [r["error"] for r in summary["runs"]] == [None, corrupt_error, None]
    assert [r["run"] for r in _records(out / "svamp.jsonl")] == ["tiny-llama"] * 2 + ["tiny-llama + probe (good)"] * 2
    assert (out / "results.md").is_file() and (out / "results.png").is_file()


# ---- 1b. the output directory, checked before the model loads ----------------------------------------------
def test_output_that_is_a_file_fails_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / "results"
    taken.write_text("keep me")
    code, output = _cli(_evaluate_args(tmp_path / "no-such-model", ASSETS, taken), capsys, monkeypatch)
    assert code == 1 and "Traceback" not in output
    assert output == f"Error: evaluate: the output '{taken}' is a file, not a directory; choose a directory\n"
    assert taken.read_text() == "keep me"

    below = taken / "eval"
    code, output = _cli(_evaluate_args(tmp_path / "no-such-model", ASSETS, below), capsys, monkeypatch)
    assert (code, output) == (
        1,
        f"Error: evaluate: '{taken}' (above the output '{below}') is a file, not a directory\n",
    )


def test_unwritable_output_fails_before_the_model_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # as a read-only disk answers (root ignores chmod)
    out = tmp_path / "eval"
    config = _config(out, model=str(tmp_path / "no-such-model"))
    with pytest.raises(OutputError) as err:
        run_evaluation(config)  # the model would fail to load: the output check comes first
    assert str(err.value) == (
        f"evaluate: the output directory '{out}' is not writable (Permission denied); choose another directory "
        "or fix its permissions"
    )


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_directory(tmp_path: Path) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=r"is not writable \(Permission denied\)"):
            run_evaluation(_config(out, model=str(tmp_path / "no-such-model")))
    finally:
        out.chmod(0o700)


# ---- 2. empty test sets -----------------------------------------------------------------------------------
def test_empty_test_set_is_an_error_naming_the_task_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dataset(tmp_path, "SVAMP", [])
    out = tmp_path / "eval"
    code, output = _cli(_evaluate_args(tmp_path / "no-such-model", tmp_path, out), capsys, monkeypatch)
    assert code == 1 and "Traceback" not in output
    assert output == (
        f"Error: task 'svamp': {path} holds no records (an empty list); put the SVAMP test set there: a JSON list "
        'of {"instruction", "input", "output", "answer"} records\n'
    )
    assert not out.exists()  # failed before anything was created

    with pytest.raises(TaskDataError) as err:
        la.get_task("svamp").load(ASSETS, limit=0)
    path = ASSETS / "dataset" / "SVAMP" / "test.json"
    assert str(err.value) == f"task 'svamp': limit=0 leaves no examples of {path}; give a limit of at least 1"


class _NoExamples(Task):
    name = "nothing"
    description = "A task whose loader finds no examples."

    def load(self, data_dir: Any = None, limit: int | None = None) -> list[Example]:
        return []


class _NoExamplesPlugin:
    @hookimpl
    def register_tasks(self, register):  # type: ignore[no-untyped-def]
        register(_NoExamples())


def test_a_task_returning_no_examples_is_an_error_not_zero_accuracy(tmp_path: Path) -> None:
    inline = (math_tasks, commonsense_tasks, probe_plugin, llm_adapters_templates, llm_adapters_eval)
    with use_plugins(*inline, llm_adapters_gguf, _NoExamplesPlugin()):
        with pytest.raises(TaskDataError) as err:
            run_evaluation(
                _config(tmp_path / "eval", tasks=["nothing"], limit=None),
                model=tiny_llama(),
                tokenizer=char_tokenizer(),
            )
    assert str(err.value) == (
        "task 'nothing': no examples to evaluate; give it a non-empty test set or leave it out of --task"
    )
    assert not (tmp_path / "eval").exists()


# ---- 3. answers outside the label set ---------------------------------------------------------------------
AQUA_Q = "What is 1 + 1? Answer Choices: (A) 1 (B) 2 (C) 3 (D) 4 (E) 5"
ARC_Q = (
    "Please choose the correct answer to the question: Which is a metal?\n\nAnswer1: wood Answer2: glass "
    "Answer3: iron Answer4: salt Answer5: sand\n\nAnswer format: answer1/answer2/answer3/answer4/answer5"
)


def test_letter_outside_the_choices_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _dataset(tmp_path, "AQuA", [{"instruction": AQUA_Q, "answer": "B"}, {"instruction": AQUA_Q, "answer": "F"}])
    code, output = _cli(
        _evaluate_args(tmp_path / "no-such-model", tmp_path, tmp_path / "eval", "aqua"), capsys, monkeypatch
    )
    assert code == 1 and "Traceback" not in output
    assert output == (
        f"Error: task 'aqua': {path}, record 1: answer 'F' is not one of the allowed labels (A, B, C, D, E); "
        "correct the record's 'answer' to one of them\n"
    )


def test_label_outside_the_options_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [{"instruction": ARC_Q, "answer": a} for a in ("answer3", "answer7", "answer3")]
    path = _dataset(tmp_path, "ARC-Easy", records)
    code, output = _cli(_evaluate_args(tmp_path / "m", tmp_path, tmp_path / "eval", "arc-easy"), capsys, monkeypatch)
    assert code == 1 and "Traceback" not in output
    assert output == (
        f"Error: task 'arc-easy': {path}, record 1: answer 'answer7' is not one of the allowed labels (answer1, "
        "answer2, answer3, answer4, answer5); correct the record's 'answer' to one of them\n"
    )


# ---- 4. bytes that are not UTF-8 --------------------------------------------------------------------------
def test_task_file_that_is_not_utf8_names_the_file_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    content = b'[\n{"instruction": "How many caf\xe9s?", "answer": "2"}\n]'
    path = _dataset(tmp_path, "SVAMP", content)
    code, output = _cli(_evaluate_args(tmp_path / "no-such-model", tmp_path, tmp_path / "eval"), capsys, monkeypatch)
    assert code == 1 and "Traceback" not in output
    offset = content.index(b"\xe9")
    assert output == (
        f"Error: task 'svamp': {path} is not UTF-8 text: byte 0xe9 at offset {offset} (line 2) cannot be decoded "
        "(invalid continuation byte); save the file as UTF-8\n"
    )


def test_task_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    source = ASSETS / "dataset" / "SVAMP" / "test.json"
    _dataset(tmp_path, "SVAMP", b"\xef\xbb\xbf" + source.read_bytes())
    assert la.get_task("svamp").load(tmp_path) == la.get_task("svamp").load(ASSETS)


def test_good_data_still_evaluates_from_a_copy(tmp_path: Path) -> None:
    """The checks accept the fixtures the other tests use (every record's answer is one of its labels)."""
    shutil.copytree(ASSETS / "dataset", tmp_path / "dataset")
    for name in ("svamp", "mawps", "hellaswag", "winogrande", "openbookqa"):
        assert la.get_task(name).load(tmp_path)


def test_a_second_writer_of_the_output_is_refused_at_once(tmp_path: Path) -> None:
    from llm_adapters.fileio import OutputLock

    out = tmp_path / "eval"
    out.mkdir()
    with OutputLock(out, "train"), pytest.raises(OutputError, match=r"is being written by another run \(train, pid"):
        run_evaluation(_config(out, model=str(tmp_path / "no-such-model")))
    assert sorted(p.name for p in out.iterdir()) == []
