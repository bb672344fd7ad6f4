"""Evaluation reports: ``summary.json``, one ``<task>.jsonl`` per task, ``results.md`` and ``results.png``.

* ``summary.json``: the model, the settings, the scoring mode, and per run (base model and/or adapters) per
  task the accuracy (a fraction), the number correct and the count; a failed run has its ``error`` (and
  ``average`` null), ``failed`` lists the failed runs and ``pending`` those not evaluated yet (the reports are
  rewritten after every run). ``tasks`` repeats the first finished run's per-task results for scripts that
  evaluate one run.
* ``<task>.jsonl``: one JSON object per example and run, with at least ``task``, ``prompt``,
  ``generation``, ``prediction``, ``answer``, ``correct`` (and ``run``, ``scoring``).
* ``results.md``: the paper's table layout: one row per model + adapter, one column per data set and their
  average, accuracies in percent.
* ``results.png``: the same as a grouped bar chart.

Every file is strict JSON: non-finite numbers are written as ``null``, never ``Infinity``. Every file is
written atomically (a reader never sees half a file).
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_adapters import __version__
from llm_adapters.fileio import atomic_write, atomic_write_text, dumps_json, write_json

if TYPE_CHECKING:
    from llm_adapters.task import Task

    from .config import EvalConfig
    from .results import RunResult

SUMMARY = "summary.json"
TABLE = "results.md"
CHART = "results.png"


def jsonl_name(task: Task) -> str:
    return f"{task.name}.jsonl"


def _task_entry(result: Any) -> dict[str, Any]:
    return {
        "metric": result.task.metric,
        "accuracy": result.accuracy,
        "correct": result.correct,
        "count": result.count,
        "scoring": result.scoring,
        "method": result.method,
        "accuracy_by_scoring": dict(result.accuracy_by_scoring),
        "seconds": round(result.seconds, 3),
        "examples_per_second": round(result.count / result.seconds, 3) if result.seconds > 0 else None,
        "file": jsonl_name(result.task),
    }


def build_summary(
    config: EvalConfig,
    runs: Sequence[RunResult],
    tasks: Sequence[Task],
    *,
    model_name: str | None = None,
    pending: Sequence[str] = (),
) -> dict[str, Any]:
    import torch
    import transformers

    settings = {
        "protocol": config.protocol,
        "method": config.method,
        "template": config.template_name,
        "batch_size": config.batch_size,
        "limit": config.limit,
        "data_dir": config.data_dir,
        "dtype": config.dtype,
        "quantize": config.quantize,
        "generation": {
            t.name: {
                "max_new_tokens": g.max_new_tokens,
                "num_beams": g.num_beams,
                "do_sample": False,
                "stop_at_eos": g.stop_at_eos,
                "skip_special_tokens": g.skip_special_tokens,
            }
            for t in tasks
            for g in [config.generation_for(t)]
        },
    }
    if config.method == "loglik":
        settings["loglik"] = {"target": config.loglik_target, "normalize": config.normalize_for()}
    run_entries = [
        {
            "label": run.label,
            "adapter": run.adapter,
            "tasks": {r.task.name: _task_entry(r) for r in run.tasks},
            "average": None if run.error is not None else run.average,
            "error": run.error,
        }
        for run in runs
    ]
    first = next((entry for entry in run_entries if entry["error"] is None), None)
    return {
        "model": model_name or config.model,
        "adapters": [r.adapter["path"] for r in runs if r.adapter],
        "scoring": config.scoring_mode,
        "settings": settings,
        "tasks": dict(first["tasks"]) if first else {},
        "average": first["average"] if first else None,
        "runs": run_entries,
        "failed": [entry["label"] for entry in run_entries if entry["error"] is not None],
        "pending": list(pending),
        "versions": {
            "llm_adapters": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def scoring_text(summary: dict[str, Any]) -> str:
    """How the run's answers were judged, in words."""
    if summary["settings"]["method"] == "loglik":
        return f"log-likelihood of the options (multiple choice), {summary['scoring']} extraction for the others"
    return summary["scoring"]


def markdown_table(summary: dict[str, Any], tasks: Sequence[Task]) -> str:
    """The paper's layout: rows model + adapter, columns data sets and their average, in percent."""
    head = ["Model", *[t.title for t in tasks], "Avg"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    counted: dict[str, int] = {}
    for run in summary["runs"]:
        cells = [_cell(run["label"])]
        for t in tasks:
            entry = run["tasks"].get(t.name)
            cells.append(f"{100 * entry['accuracy']:.1f}" if entry else "failed")
            if entry:
                counted.setdefault(t.name, entry["count"])
        cells.append(f"{100 * run['average']:.1f}" if run.get("average") is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    counts = ", ".join(f"{t.title} {counted[t.name]}" for t in tasks if t.name in counted)
    s = summary["settings"]
    note = (
        f"\nAccuracy (%). Scoring: {scoring_text(summary)}; protocol: {s['protocol']}; template: {s['template']}. "
        f"Examples: {counts}.\n"
    )
    for run in summary["runs"]:
        if run.get("error") is not None:
            note += f"\nFailed: {run['label']}: {run['error']}\n"
    if summary.get("pending"):
        note += f"\nNot evaluated yet: {', '.join(summary['pending'])}.\n"
    return "\n".join(lines) + "\n" + note


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def bar_chart(summary: dict[str, Any], tasks: Sequence[Task], path: Path) -> Path | None:
    """A grouped bar chart (one group per data set and the average, one bar per run); None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: no bar chart (pip install matplotlib)", stacklevel=2)
        return None
    groups = [t.title for t in tasks] + ["Avg"]
    runs = [run for run in summary["runs"] if run.get("error") is None]  # failed runs have no full row
    if not runs:
        return None
    width = 0.8 / max(len(runs), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) + 2), 4.0))
    for i, run in enumerate(runs):
        values = [100 * run["tasks"][t.name]["accuracy"] for t in tasks] + [100 * run["average"]]
        xs = [g + (i - (len(runs) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width=width, label=run["label"])
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    method = "log-likelihood" if summary["settings"]["method"] == "loglik" else f"{summary['scoring']} scoring"
    ax.set_title(f"{summary['model']} - {method}")
    ax.legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
    return path


def write_reports(
    out: Path, summary: dict[str, Any], runs: Sequence[RunResult], tasks: Sequence[Task], *, chart: bool = True
) -> None:
    """Write (or rewrite) every report for the runs so far; the chart only with ``chart``. ``summary.json``
    comes last, so it never announces a run whose records are not on disk yet."""
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        lines = [
            dumps_json(record) + "\n"
            for run in runs
            for result in run.tasks
            if result.task.name == task.name
            for record in result.records
        ]
        atomic_write_text(out / jsonl_name(task), "".join(lines))
    atomic_write_text(out / TABLE, markdown_table(summary, tasks))
    if chart:
        bar_chart(summary, tasks, out / CHART)
    write_json(out / SUMMARY, summary)
