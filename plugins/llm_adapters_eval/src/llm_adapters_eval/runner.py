"""The evaluation runner: tasks x runs (the base model and/or adapters) -> records and accuracies.

:func:`run_evaluation` is what ``llm-adapters evaluate`` calls: it resolves the tasks, loads their data (a
missing file fails before any model is loaded), loads the model once, and for each run (the base model, then
each adapter, loaded, evaluated and detached in turn) scores every task, either by generating and extracting
the answer or, for multiple-choice tasks with ``method="loglik"``, by the options' log-likelihood. The
reports (``summary.json``, one JSONL file per task, ``results.md``, ``results.png``) are written by
:mod:`llm_adapters_eval.report`.

Nothing finished is lost: the output directory is checked (a writable directory, not a file) before the model
loads, and the reports are rewritten after every run, so each finished run is on disk before the next one
starts (the chart is drawn at the end). A run that fails (an adapter that does not fit the model, a corrupt
adapter file, ...) is recorded with its error in ``summary.json`` and the other runs go on; at the end
:class:`EvaluationError` names the failed runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_adapters.errors import ConfigError, LLMAdaptersError
from llm_adapters.fileio import OutputLock, check_output_dir
from llm_adapters.task import Example, Task, TaskDataError

from .config import EvalConfig
from .per_task import evaluate_task, resolve_template
from .results import EvaluationError, RunResult


# ---- choosing tasks -------------------------------------------------------------------------------
def select_tasks(spec: str | Sequence[str]) -> list[Task]:
    """The tasks named by ``spec`` (``"gsm8k,SVAMP"``, ``["math"]``): names, aliases, data-set folder names
    or suite names, case-insensitive, each task once, in the order given (suites in registration order)."""
    from llm_adapters.registry import tasks as registered

    parts = [spec] if isinstance(spec, str) else list(spec)
    wanted = [p.strip() for item in parts for p in str(item).split(",") if p.strip()]
    if not wanted:
        raise ConfigError("no task given; name tasks (gsm8k, arc-easy, ...) or suites (math, commonsense)")
    table = registered()
    lookup: dict[str, str] = {}
    for name, task in table.items():
        for key in task.spellings():
            if key:
                lookup.setdefault(key.lower(), name)
                lookup.setdefault(key.lower().replace("_", "-"), name)
    suites: dict[str, list[str]] = {}
    for name, task in table.items():
        if task.suite:
            suites.setdefault(task.suite.lower(), []).append(name)
    chosen: list[str] = []
    for item in wanted:
        key = item.lower()
        names = suites.get(key) or ([lookup[key]] if key in lookup else None)
        if names is None and key.replace("_", "-") in lookup:
            names = [lookup[key.replace("_", "-")]]
        if names is None:
            known = ", ".join(sorted(table)) or "none (tasks come from plugins, e.g. llm-adapters-tasks)"
            suite_text = ", ".join(sorted(suites)) or "none"
            raise ConfigError(f"unknown task {item!r}; installed tasks: {known}; suites: {suite_text}")
        chosen.extend(n for n in names if n not in chosen)
    return [table[n] for n in chosen]


# ---- the whole run --------------------------------------------------------------------------------
def model_label(name_or_path: str | None, model: Any) -> str:
    """A short row title for the model: the given name (a directory's own name), else the name the model was
    loaded from, else its class."""
    name = name_or_path or str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
    if name and Path(name).exists():
        name = Path(name).resolve().name
    return name or type(model).__name__


#: the name each evaluated adapter is attached under, one at a time
ADAPTER_NAME = "evaluated"


def describe_error(exc: BaseException) -> str:
    """An exception in one line: our own errors by their message, anything else with its type."""
    text = " ".join(str(exc).split())
    if isinstance(exc, LLMAdaptersError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_examples(tasks: Sequence[Task], data: dict[str, list[Example]], config: EvalConfig) -> None:
    """An empty test set is an error naming the task and, where the task has one, its file."""
    for task in tasks:
        if data[task.name]:
            continue
        where = ""
        data_file = getattr(task, "data_file", None)
        if callable(data_file):
            try:
                where = f" in {data_file(config.data_dir)}"
            except LLMAdaptersError:
                where = ""
        limit = f" (limit={config.limit})" if config.limit is not None else ""
        raise TaskDataError(
            f"task {task.name!r}: no examples to evaluate{where}{limit}; give it a non-empty test set or leave it "
            "out of --task"
        )


def _detach_if_attached(model: Any, name: str) -> None:
    from llm_adapters.engine import detach, list_adapters

    if any(a.name == name for a in list_adapters(model)):
        detach(model, name)


def run_evaluation(
    config: EvalConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    echo: Callable[[str], None] | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate ``config.tasks`` for each run and (with ``write``) write the reports to ``config.output``,
    after every run. Returns the summary (what ``summary.json`` holds). ``model`` / ``tokenizer``: an already
    loaded model to use instead of loading ``config.model``.

    Raises :class:`EvaluationError` (with ``summary``) after all runs when any run failed; the other runs'
    results are written first."""
    from llm_adapters.files import read_adapter_config

    say = echo or (lambda _msg: None)
    tasks = select_tasks(config.tasks)
    data = {t.name: t.load(config.data_dir, config.limit) for t in tasks}
    _check_examples(tasks, data, config)
    adapters = [(p, read_adapter_config(p)) for p in config.adapter_paths]
    resolve_template(config.template_name, None)  # a misspelt template fails before the model loads
    if not config.with_base and not adapters:
        raise ConfigError("nothing to evaluate: include_base is false and no adapter path was given")
    out = Path(config.output)
    if not write:
        return _evaluate(config, tasks, data, adapters, out, write, model, tokenizer, say)
    check_output_dir(out, what="evaluate")  # an unwritable --output fails before the model loads
    with OutputLock(out, "evaluate"):  # one writer per output directory
        return _evaluate(config, tasks, data, adapters, out, write, model, tokenizer, say)


def _evaluate(
    config: EvalConfig,
    tasks: list[Task],
    data: dict[str, list[Example]],
    adapters: list[tuple[str, dict[str, Any]]],
    out: Path,
    write: bool,
    model: Any,
    tokenizer: Any,
    say: Callable[[str], None],
) -> dict[str, Any]:
    from llm_adapters.files import load_adapter

    from .report import build_summary

    given = model is not None and tokenizer is not None
    if not given:
        from llm_adapters.models import load_model

        say(f"loading {config.model or 'the default model'} ...")
        model, tokenizer = load_model(
            config.model, dtype=config.dtype, quantize=config.quantize, device_map=config.device_map
        )
    template = resolve_template(config.template_name, tokenizer)
    label = model_label(None if given else config.model, model)
    plan: list[tuple[str, str | None, dict[str, Any] | None]] = []
    if config.with_base:
        plan.append((label, None, None))
    for i, (path, meta) in enumerate(adapters):
        run_label = f"{label} + {meta['adapter_type']} ({Path(path).resolve().name})"
        if any(run_label == p[0] for p in plan):  # two adapter folders of one name
            run_label = f"{run_label} #{i + 1}"
        plan.append((run_label, path, meta))
    model_name = (config.model or label) if not given else label
    runs: list[RunResult] = []
    summary: dict[str, Any] = {}
    for number, (run_label, path, meta) in enumerate(plan, start=1):
        info = None
        if path is not None:
            info = {"path": str(path), "type": (meta or {}).get("adapter_type"), "config": (meta or {}).get("config")}
        run = RunResult(run_label, info, [])
        try:
            if path is not None:
                load_adapter(model, path, name=ADAPTER_NAME)
            try:
                for task in tasks:
                    result = evaluate_task(model, tokenizer, task, data[task.name], config, template, run=run_label)
                    run.tasks.append(result)
                    say(
                        f"{run_label} | {task.name}: {100 * result.accuracy:.1f}% "
                        f"({result.correct}/{result.count}, {result.scoring}, {result.seconds:.1f}s)"
                    )
            finally:
                if path is not None:
                    _detach_if_attached(model, ADAPTER_NAME)
        except Exception as exc:  # one failed run must not cost the others their results
            run.error = describe_error(exc)
            say(f"{run_label}: run {number} of {len(plan)} FAILED: {run.error}")
        runs.append(run)
        pending = [p[0] for p in plan[number:]]
        summary = build_summary(config, runs, tasks, model_name=model_name, pending=pending)
        if write:
            _write(out, summary, runs, tasks, chart=not pending)
    failed = [r for r in runs if r.failed]
    if failed:
        details = "; ".join(f"{r.label}: {r.error}" for r in failed)
        kept = f". The other runs' results and these errors are in {out}" if write else ""
        raise EvaluationError(f"{len(failed)} of {len(runs)} evaluation run(s) failed: {details}{kept}", summary)
    return summary


def _write(
    out: Path, summary: dict[str, Any], runs: Sequence[RunResult], tasks: Sequence[Task], *, chart: bool
) -> None:
    from .report import write_reports

    try:
        write_reports(out, summary, runs, tasks, chart=chart)
    except OSError as exc:
        raise EvaluationError(
            f"could not write the evaluation reports into {out}: {exc}; free space or fix the permissions and run again"
        ) from None
