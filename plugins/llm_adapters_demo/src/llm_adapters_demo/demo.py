"""``llm-adapters demo``: a real model visibly learns arithmetic word problems in a few minutes on a CPU.

On the embedded SmolLM2-135M-Instruct: generate training and held-out word problems
(:mod:`llm_adapters_demo.arithmetic`), measure the held-out accuracy zero-shot, fine-tune a LoRA adapter, measure
again, and write ``summary.json`` (``accuracy_before``, ``accuracy_after`` as fractions, timings, paths),
``loss.png``, the generations before and after (JSONL), the data, and the adapter with its metrics.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from llm_adapters.fileio import atomic_write_text, dumps_json, write_json
from llm_adapters.template import Template, get_template

from .arithmetic import extract_answer, is_correct, split_problems


@dataclass
class DemoSettings:
    """What the demo does; the defaults finish in a few minutes on two CPU cores."""

    model: str = "smollm2-135m"
    n_train: int = 400
    n_heldout: int = 100
    seed: int = 0
    template: str = "chat"  # the instruct model's own format: the fairest zero-shot baseline
    adapter: dict[str, Any] = field(
        default_factory=lambda: {
            "type": "lora",
            "r": 8,
            "alpha": 16,
            "dropout": 0.05,
            "target_modules": ["attn.q", "attn.k", "attn.v", "mlp.up", "mlp.down"],
        }
    )
    epochs: float = 1.0
    batch_size: int = 8
    micro_batch_size: int = 8
    learning_rate: float = 1e-3  # 50 steps: a higher rate than the 3e-4 of long runs learns more in them
    warmup_steps: int = 5
    cutoff_len: int = 160
    max_new_tokens: int = 40
    eval_batch_size: int = 24
    progress: bool = True


def evaluate_problems(
    model: Any, tokenizer: Any, template: Template, problems: Sequence[dict[str, str]], settings: DemoSettings
) -> tuple[float, list[dict[str, Any]]]:
    """``(accuracy, rows)``: batched greedy generation (left padding, KV cache, stopping at EOS) on each
    problem, scored by its final number."""
    from llm_adapters_eval.generation import GenerationSettings, generate

    prompts = [template.prompt(p["instruction"], p.get("input", "")) for p in problems]
    # batches of equal size: 100 problems in 4 x 25 rather than 4 x 24 + a straggler of 4
    n_batches = max(1, math.ceil(len(prompts) / settings.eval_batch_size))
    batch_size = max(1, math.ceil(len(prompts) / n_batches))
    gen = GenerationSettings(max_new_tokens=settings.max_new_tokens, batch_size=batch_size, skip_special_tokens=True)
    texts = [g.text.strip() for g in generate(model, tokenizer, prompts, gen, progress=settings.progress)]
    rows = []
    for p, text in zip(problems, texts, strict=True):
        ok = is_correct(text, p["answer"])
        rows.append(
            {
                "instruction": p["instruction"],
                "generation": text,
                "prediction": extract_answer(text),
                "answer": p["answer"],
                "correct": ok,
            }
        )
    acc = sum(r["correct"] for r in rows) / len(rows) if rows else 0.0
    return acc, rows


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(dumps_json(r) + "\n" for r in rows))


def run_demo(
    output: str | Path,
    settings: DemoSettings | None = None,
    *,
    model: Any = None,
    tokenizer: Any = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo into ``output``; returns the summary (also written to ``summary.json``)."""
    from llm_adapters.models import load_model
    from llm_adapters_train.run_config import TrainConfig
    from llm_adapters_train.training import train

    s = settings or DemoSettings()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if model is None:
        echo(f"loading {s.model} (converted and cached on first use) ...")
        model, tokenizer = load_model(s.model, dtype="auto", device="cpu" if not torch.cuda.is_available() else None)
    t_load = time.time() - t0
    template = get_template(s.template, tokenizer=tokenizer if get_template(s.template).needs_tokenizer else None)

    train_set, heldout = split_problems(s.n_train, s.n_heldout, seed=s.seed)
    data_dir = out / "data"
    data_dir.mkdir(exist_ok=True)
    write_json(data_dir / "train.json", train_set, indent=1)
    write_json(data_dir / "heldout.json", heldout, indent=1)

    echo(f"measuring zero-shot accuracy on {len(heldout)} held-out problems ...")
    t1 = time.time()
    acc_before, rows_before = evaluate_problems(model, tokenizer, template, heldout, s)
    t_before = time.time() - t1
    _write_jsonl(out / "generations_before.jsonl", rows_before)
    echo(f"  accuracy before: {acc_before:.1%} ({time.time() - t1:.0f} s)")

    adapter = dict(s.adapter)
    adapter_type = adapter.pop("type")
    config = TrainConfig(
        model=s.model,
        adapter=adapter_type,
        adapter_options=adapter,
        data=str(data_dir / "train.json"),
        output=str(out / "adapter"),
        template=s.template,
        cutoff_len=s.cutoff_len,
        batch_size=s.batch_size,
        micro_batch_size=s.micro_batch_size,
        num_epochs=s.epochs,
        learning_rate=s.learning_rate,
        warmup_steps=s.warmup_steps,
        logging_steps=5,
        save_steps=10_000,
        seed=s.seed,
        report_to="none",
        progress=s.progress,
        overwrite=True,
    )
    echo(f"fine-tuning {adapter_type} on {len(train_set)} problems ...")
    t2 = time.time()
    result = train(config, model=model, tokenizer=tokenizer)
    t_train = time.time() - t2

    echo(f"measuring accuracy after fine-tuning on the same {len(heldout)} problems ...")
    t3 = time.time()
    acc_after, rows_after = evaluate_problems(model, tokenizer, template, heldout, s)
    t_after = time.time() - t3
    _write_jsonl(out / "generations_after.jsonl", rows_after)

    plot = None
    if result.plot is not None:
        plot = out / "loss.png"
        shutil.copyfile(result.plot, plot)
    summary = {
        "model": s.model,
        "adapter": s.adapter,
        "accuracy_before": acc_before,
        "accuracy_after": acc_after,
        "heldout_problems": len(heldout),
        "train_problems": len(train_set),
        "train_steps": result.metrics.get("global_step"),
        "train_loss": result.metrics.get("train_loss"),
        "seconds": {
            "load": round(t_load, 1),
            "eval_before": round(t_before, 1),
            "train": round(t_train, 1),
            "eval_after": round(t_after, 1),
            "total": round(time.time() - t0, 1),
        },
        "paths": {
            "summary": str(out / "summary.json"),
            "adapter": str(result.output_dir),
            "loss_plot": str(plot) if plot else None,
            "metrics": str(result.output_dir / "metrics.json"),
            "generations_before": str(out / "generations_before.jsonl"),
            "generations_after": str(out / "generations_after.jsonl"),
            "data": str(data_dir),
        },
        "settings": asdict(s),
    }
    write_json(out / "summary.json", summary)
    echo(format_table(summary))
    return summary


def format_table(summary: dict[str, Any]) -> str:
    """The before / after table and the paths written."""
    sec = summary["seconds"]
    rows = [
        ("", "held-out accuracy", "time"),
        ("before (zero-shot)", f"{summary['accuracy_before']:.1%}", f"{sec['eval_before']:.0f} s"),
        (f"fine-tuning ({summary['train_steps']} steps)", "", f"{sec['train']:.0f} s"),
        ("after", f"{summary['accuracy_after']:.1%}", f"{sec['eval_after']:.0f} s"),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{a:<{w0}}  {b:>{w1}}  {c:>6}" for a, b, c in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"({summary['heldout_problems']} held-out problems; total {sec['total']:.0f} s)")
    lines.append("")
    for key, path in summary["paths"].items():
        if path:
            lines.append(f"{key:>19}: {path}")
    return "\n".join(lines)
