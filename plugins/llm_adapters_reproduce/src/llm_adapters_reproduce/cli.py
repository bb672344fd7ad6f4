"""``llm-adapters reproduce``: the paper's comparison, one command."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("reproduce", short_help="Train each adapter method of a grid and tabulate it against zero-shot.")
@click.option("--preset", default=None, help="A shipped grid: quick (the embedded model on a CPU), math, commonsense.")
@click.option(
    "--grid",
    "grid_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A grid file (YAML or JSON): methods, train_data, training, evaluation, tasks.",
)
@click.option("--model", default=None, help="Base model, replacing the grid's.")
@click.option("--methods", multiple=True, help="Only these methods of the grid (comma-separated, or repeated).")
@click.option("--task", "tasks", default=None, help="Tasks or suites replacing the grid's (comma-separated).")
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder in the LLM-Adapters layout (dataset/<Name>/test.json, ft-training_set/...), replacing the grid's.",
)
@click.option(
    "--output",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder for results.json, results.md, results.png and one folder per method (default: reproduce-<grid name>).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --output: finished cells are kept and skipped.")
@click.option(
    "--dry-run", is_flag=True, help="Check the grid, the data and the output folder, show the plan, run nothing."
)
@click.option("--list-presets", is_flag=True, help="List the presets and exit.")
@click.option(
    "--progress/--no-progress",
    default=False,
    help="Progress bars inside each training and evaluation (the line per job is always shown).",
)
def command(
    preset: str | None,
    grid_file: str | None,
    model: str | None,
    methods: tuple[str, ...],
    tasks: str | None,
    data_dir: str | None,
    output: str | None,
    resume: bool,
    dry_run: bool,
    list_presets: bool,
    progress: bool,
) -> None:
    """Train every adapter method of a grid on the same data, evaluate the zero-shot base model and every
    adapter on every task, and write the table: OUTPUT/results.json (one cell per method and task),
    OUTPUT/results.md (the paper's layout, with its published LLaMA-7B rows beside ours), OUTPUT/results.png,
    and one folder per method (adapter, metrics, loss plot, evaluation records).

    \b
    Examples:
      llm-adapters reproduce --preset quick --output runs/quick
      llm-adapters reproduce --preset math --model yahma/llama-7b-hf --data-dir ~/llm-adapters-data
      llm-adapters reproduce --grid my-grid.yaml --methods lora,series --task gsm8k --resume
    """
    from .grid import load_grid, load_preset, preset_names, preset_text

    if list_presets:
        for name in preset_names():
            grid = load_preset(name)
            click.echo(f"{name}: {' '.join(grid.description.split())}")
        return
    if preset and grid_file:
        raise click.UsageError("give --preset or --grid, not both")
    if not preset and not grid_file:
        raise click.UsageError(f"give --preset NAME ({', '.join(preset_names())}) or --grid FILE")
    if preset:
        preset_text(preset)  # an unknown name is an error listing the presets
        grid, source = load_preset(preset), f"preset {preset!r}"
    else:
        grid, source = load_grid(grid_file), str(grid_file)  # type: ignore[arg-type]

    from .plan import build_plan
    from .report import CHART, TABLE
    from .results import RESULTS, Results

    plan = build_plan(grid, source=source, model=model, methods=methods, tasks=tasks, data_dir=data_dir)
    out = Path(output or f"reproduce-{grid.name}")
    if dry_run:
        Results.open(out, plan, resume=resume)  # the folder's checks, creating nothing
        click.echo(describe_plan(plan, out))
        return
    from .runner import run_grid

    run_grid(plan, out, resume=resume, progress=progress, echo=lambda msg: click.echo(msg, err=True))
    click.echo((out / TABLE).read_text(encoding="utf-8"))
    chart = f", {out / CHART}" if (out / CHART).is_file() else ""
    click.echo(f"wrote {out / RESULTS}, {out / TABLE}{chart} and one folder per method")


def describe_plan(plan, out: Path) -> str:  # type: ignore[no-untyped-def]
    """The plan in a few lines: model, data, tasks with their example counts, methods and their settings."""
    lines = [
        f"grid {plan.grid.name} ({plan.source}); output {out}",
        f"model: {plan.model or 'the default model'} ({plan.grid.dtype})",
        f"training data: {plan.train_data} ({plan.train_records} records)",
        *[f"  {note}" for note in plan.notes],
        "tasks: " + ", ".join(f"{t.title} ({len(plan.examples[t.name])})" for t in plan.tasks),
        f"evaluation: {', '.join(f'{k}={v}' for k, v in plan.evaluation.items() if v is not None and k != 'resolved')}",
        "methods:" + (" zero-shot," if plan.grid.zero_shot else ""),
    ]
    for m in plan.methods:
        t = m.training
        steps = f"{t['max_steps']} steps" if t.get("max_steps") else f"{t['num_epochs']:g} epochs"
        options = ", ".join(f"{k}={v}" for k, v in m.adapter_options.items())
        lines.append(
            f"  {m.name}: {m.adapter_type} ({options}); {steps} of {t['batch_size']}, lr {t['learning_rate']:g}"
            + (f"; paper row {m.paper}" if m.paper else "")
        )
    return "\n".join(lines)
