"""The run's reports: ``results.md`` (the paper's table layout, ours and the paper's published rows) and
``results.png`` (our rows as grouped bars), both from what ``results.json`` holds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_adapters.fileio import atomic_write_text

from . import paper
from .grid import ZERO_SHOT

if TYPE_CHECKING:
    from llm_adapters.task import Task

TABLE = "results.md"
CHART = "results.png"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")


def rows(data: dict[str, Any], tasks: Sequence[Task]) -> list[tuple[str, dict[str, float | None], float | None]]:
    """Our rows: ``(method, task -> accuracy in %, average in % or None while a cell is missing)``, the
    zero-shot row first, then the methods in the grid's order."""
    names = [ZERO_SHOT] if any(c["method"] == ZERO_SHOT for c in data["cells"]) else []
    names += [m for m in data["methods"] if any(c["method"] == m for c in data["cells"]) or m in data["trainings"]]
    out = []
    for name in names:
        values: dict[str, float | None] = {}
        for task in tasks:
            cell = next((c for c in data["cells"] if c["method"] == name and c["task"] == task.name), None)
            values[task.name] = 100 * cell["accuracy"] if cell else None
        known = [v for v in values.values() if v is not None]
        average = sum(known) / len(known) if known and len(known) == len(values) else None
        out.append((name, values, average))
    return out


def _training_line(name: str, method: dict[str, Any], trained: dict[str, Any]) -> str:
    t = method["training"]
    steps = trained.get("global_step")
    params = trained.get("trainable_parameters")
    loss = trained.get("train_loss")
    parts = [
        f"{steps} steps of {t['batch_size']}" if steps is not None else f"batch {t['batch_size']}",
        f"lr {t['learning_rate']:g}",
        f"{params:,} trainable parameters" if params is not None else None,
        f"final training loss {loss:.3f}" if isinstance(loss, (int, float)) else None,
        f"{trained['seconds']:.0f} s" if trained.get("seconds") is not None else None,
    ]
    options = ", ".join(f"{k}={v}" for k, v in method.get("options", {}).items())
    return f"- {name} ({method['adapter_type']}: {options}): " + ", ".join(p for p in parts if p)


def _data_note(settings: dict[str, Any]) -> str:
    shared = settings["shared"]
    text = f"Training data: {shared['train_data']} ({settings['train_records']} records"
    overlapping = settings["overlapping_records"]
    if not overlapping:
        return text + ")."
    fate = "were left out" if settings["left_out"] else "were kept (decontaminate: false)"
    return text + f"; {overlapping} of them repeat an evaluated problem and {fate})."


def markdown(data: dict[str, Any], tasks: Sequence[Task]) -> str:
    """``results.md``: a title, the table (our rows, then the paper's LLaMA-7B rows for the same methods) and
    the notes that say how each number was obtained."""
    s = data["settings"]
    shared = s["shared"]
    model = s.get("model_label") or s.get("model") or "the default model"
    head = ["Model", "Method", *[t.title for t in tasks], "Avg"]
    lines = [
        f"# Reproduction: {data['grid']}",
        "",
        *([data["description"].strip(), ""] if data.get("description") else []),
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    ours = rows(data, tasks)
    for name, values, average in ours:
        cells = [_pct(values[t.name]) for t in tasks]
        lines.append("| " + " | ".join([_cell_text(model), name, *cells, _pct(average)]) + " |")
    shown_rows = []
    for name, _values, _average in ours:
        row = data["methods"].get(name, {}).get("paper")
        if row and row not in shown_rows:
            shown_rows.append(row)
    paper_lines = []
    for row in shown_rows:
        values = paper.paper_row(row, [t.name for t in tasks])
        if values is None:
            continue
        known = list(values.values())
        average = sum(known) / len(known) if all(v is not None for v in known) else None  # type: ignore[arg-type]
        cells = [_pct(values[t.name]) for t in tasks]
        paper_lines.append("| " + " | ".join([f"{paper.MODEL} (paper)", row, *cells, _pct(average)]) + " |")
    lines += paper_lines
    ev = shared["evaluation"]
    counts = ", ".join(f"{t.title} {s['examples'].get(t.name, '?')}" for t in tasks)
    limit = f"the first {ev['limit']} examples of each test set" if ev.get("limit") else "the whole test sets"
    budget = f"at most {ev['max_new_tokens']} new tokens" if ev.get("max_new_tokens") else "the tasks' token budgets"
    beams = ev.get("num_beams") or (4 if ev.get("protocol") == "reference" else 1)
    notes = [
        "",
        f"Accuracy (%). Ours: {model} ({s.get('model_dtype') or shared['dtype']}), {limit} ({counts}); "
        f"protocol {ev['protocol']}, "
        f"template {ev['resolved']['template']}, scoring {ev['resolved']['scoring']}, "
        f"{'greedy decoding' if beams == 1 else f'{beams}-beam search'}, {budget}.",
        "",
        _data_note(s),
    ]
    trainings = [
        _training_line(name, data["methods"][name], data["trainings"][name])
        for name in data["methods"]
        if name in data["trainings"]
    ]
    if trainings:
        notes += ["", "Trainings:", *trainings]
    if paper_lines:
        notes += [
            "",
            f"The paper's rows: {paper.SOURCE}. Their average is over the columns shown here.",
        ]
    missing = [f"{name} / {t.title}" for name, values, _ in ours for t in tasks if values[t.name] is None]
    if missing:
        notes += ["", f"Not finished yet: {', '.join(missing)}."]
    return "\n".join(lines + notes) + "\n"


def chart(data: dict[str, Any], tasks: Sequence[Task], path: Path) -> Path | None:
    """``results.png``: our complete rows as grouped bars (the evaluation plugin's chart); None without
    matplotlib or without a complete row."""
    from llm_adapters_eval.report import bar_chart

    ev = data["settings"]["shared"]["evaluation"]
    runs = [
        {"label": name, "tasks": {t: {"accuracy": v / 100} for t, v in values.items()}, "average": avg / 100}
        for name, values, avg in rows(data, tasks)
        if avg is not None
    ]
    if not runs:
        return None
    summary = {
        "runs": [{**r, "error": None} for r in runs],
        "settings": {"method": ev.get("method", "generate")},
        "scoring": ev["resolved"]["scoring"],
        "model": data["settings"].get("model_label") or data["settings"].get("model") or "model",
    }
    return bar_chart(summary, tasks, path)


def write_reports(out: Path, data: dict[str, Any], tasks: Sequence[Task], *, draw: bool = True) -> None:
    """Write ``results.md`` (and with ``draw``, ``results.png``) into ``out``."""
    atomic_write_text(out / TABLE, markdown(data, tasks))
    if draw:
        chart(data, tasks, out / CHART)
