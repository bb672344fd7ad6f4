"""``llm-adapters evaluate``: score a model, with and without adapters, on math and commonsense tasks."""

from __future__ import annotations

from pathlib import Path

import click

from llm_adapters.cli_options import device_map_option, dtype_option, quantize_option


@click.command("evaluate")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A YAML or JSON file of evaluate settings (the long option names with _ for -); flags win over it.",
)
@click.option(
    "--model",
    default=None,
    help="Base model: an HF id, a local directory, or a name or file an installed model source handles "
    "(a .gguf file, the embedded smollm2-135m); default: the installed default model.",
)
@click.option(
    "--adapter-path",
    "adapter_paths",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="An adapter directory (repeatable: each is evaluated in its own run, side by side).",
)
@click.option(
    "--include-base/--no-include-base",
    default=None,
    help="Also evaluate the base model alone (default: only when no adapter is given).",
)
@click.option(
    "--task",
    "tasks",
    default=None,
    help="Comma-separated tasks or suites: gsm8k,svamp,aqua, "
    "math, commonsense, arc-easy, ... (case-insensitive; see `llm-adapters plugins`).",
)
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder holding dataset/<Name>/test.json (default: $LLM_ADAPTERS_DATA).",
)
@click.option("--limit", type=int, default=None, help="Only the first N examples of each task.")
@click.option("--batch-size", type=int, default=None, help="Prompts per batch (default 16; 1 = one at a time).")
@click.option(
    "--output",
    default=None,
    type=click.Path(),
    help="Directory for summary.json, <task>.jsonl, results.md and results.png.",
)
@click.option(
    "--protocol",
    type=click.Choice(["default", "reference"]),
    default=None,
    help="default: greedy, stop at EOS, robust scoring. reference: the paper's scripts (4 beams, "
    "256/32 new tokens, no EOS stop, their eval template, reference scoring).",
)
@click.option(
    "--scoring",
    type=click.Choice(["robust", "reference"]),
    default=None,
    help="Answer extraction rules (overrides the protocol's).",
)
@click.option(
    "--method",
    type=click.Choice(["generate", "loglik"]),
    default=None,
    help="loglik: multiple-choice tasks pick the most likely option instead of generating.",
)
@click.option(
    "--loglik-target",
    type=click.Choice(["label", "text"]),
    default=None,
    help="loglik: score the answer as trained ('the correct answer is answer2') or the option's text.",
)
@click.option("--num-beams", type=int, default=None, help="Beam width (default 1: greedy).")
@click.option("--max-new-tokens", type=int, default=None, help="Generation budget (default: 256 math, 32 commonsense).")
@click.option("--stop-at-eos/--no-stop-at-eos", default=None, help="Stop at the end-of-sequence token.")
@click.option("--template", default=None, help="Prompt template (default: the training default, alpaca).")
@dtype_option(default=None, help="Weights dtype (auto: float32 on CPU).")
@quantize_option()
@device_map_option()
@click.option("--progress/--no-progress", default=None, help="Progress bars on stderr (default: on).")
def command(config_file: str | None, **flags: object) -> None:
    """Evaluate a model and adapters on tasks; write summary.json, one JSONL file per task, a markdown
    table (results.md) and a bar chart (results.png) into --output.

    \b
    Example:
      llm-adapters evaluate --adapter-path out/lora --task gsm8k,svamp --limit 100 --output eval/
    """
    from .config import build_eval_config
    from .report import CHART, SUMMARY, TABLE
    from .runner import EvaluationError, run_evaluation

    if flags.get("tasks") is None and config_file is None:
        raise click.UsageError("give --task (e.g. --task gsm8k,svamp or --task math)")
    if flags.get("output") is None and config_file is None:
        raise click.UsageError("give --output DIR")
    config = build_eval_config(config_file, flags)
    out = Path(config.output)
    try:
        run_evaluation(config, echo=lambda msg: click.echo(msg, err=True))
    except EvaluationError as exc:
        if exc.summary is not None and (out / TABLE).is_file():  # some runs failed: show what the others got
            click.echo((out / TABLE).read_text(encoding="utf-8"))
        raise
    click.echo((out / TABLE).read_text(encoding="utf-8"))
    chart = f", {out / CHART}" if (out / CHART).is_file() else ""
    click.echo(f"wrote {out / SUMMARY}, {out / TABLE}{chart} and one JSONL file per task")
