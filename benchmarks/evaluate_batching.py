"""Evaluation throughput end to end: MultiArith problems one at a time, in batches through the step-wise decoder,
and in batches through transformers' ``generate``.

What ``llm-adapters evaluate --task multiarith`` does, timed: the task's examples and prompts as the runner builds
them (the training template), greedy decoding with EOS stopping and the math budget of 256 new tokens, and the
answers scored (``robust``). Three ways on the same prompts:

* ``one at a time``: ``generation.generate`` with ``batch_size=1``;
* ``batch B``: ``generation.generate`` with ``batch_size=B``: prompts grouped by token length, each batch decoded
  by ``decoding.decode``, which drops a row from the batch as soon as it ends;
* ``HF generate, batch B``: the same length-sorted, left-padded batches through ``model.generate``, where a batch
  runs until its longest answer ends (every row pays until then): the way generation worked before.

Printed: seconds, examples per second, new tokens per second and accuracy of each way, whether the three give
the same answers (greedy decoding: they must), the ratios (batch B over one at a time, the target being at least
4x, and batch B over HF generate), and the machine's load average before and after. On a machine shared with
other jobs, ``--threads 1`` keeps thread contention from swamping the figures (it hits every way alike).

    python benchmarks/evaluate_batching.py --threads 2                # 32 problems x 256 tokens (many minutes)
    python benchmarks/evaluate_batching.py --n 4 --max-new-tokens 32  # a quick look at the embedded model
    python benchmarks/evaluate_batching.py --tiny                     # a tiny random LLaMA: a smoke test
    python benchmarks/evaluate_batching.py --json runs/evaluate_batching.json --min-ratio 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "llm-adapters"
TARGET = 4.0


def examples(n: int, data_dir: Path) -> tuple[Any, list[Any]]:
    """The task ``multiarith`` and its first ``n`` test examples (``dataset/MultiArith/test.json``)."""
    import llm_adapters as la

    task = la.get_task("multiarith")
    return task, task.load(data_dir, n)


def hf_generate(model: Any, tok: Any, prompts: Sequence[str], settings: Any) -> list[Any]:
    """The baseline: length-sorted, left-padded batches through ``model.generate`` (greedy, EOS stopping)."""
    from llm_adapters_eval.generation import Generated, eos_ids, evaluating, generation_config, pad_id

    config = generation_config(model, tok, settings)
    ends, pad = eos_ids(model, tok), pad_id(model, tok)
    encoded = tok(list(prompts))["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]), reverse=True)
    out: list[Any] = [None] * len(prompts)
    device = next(model.parameters()).device
    with evaluating(model):
        for start in range(0, len(order), settings.batch_size):
            chunk = order[start : start + settings.batch_size]
            width = max(len(encoded[i]) for i in chunk)
            ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in chunk], device=device)
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in chunk], device=device)
            new = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, width:].tolist()
            for i, row in zip(chunk, new, strict=True):
                cut = next((k for k, t in enumerate(row) if t in ends), None)
                kept = row if cut is None else row[:cut]
                text = tok.decode(kept, skip_special_tokens=settings.skip_special_tokens)
                out[i] = Generated(text, kept, cut is not None)
    return out


def timed(
    way: Callable[[], list[Any]], task: Any, data: Sequence[Any]
) -> tuple[float, list[Any], dict[str, float | int]]:
    start = time.perf_counter()
    outputs = way()
    seconds = time.perf_counter() - start
    correct = sum(task.score(o.text, ex, "robust").correct for o, ex in zip(outputs, data, strict=True))
    tokens = sum(o.num_tokens for o in outputs)
    n = len(outputs)
    figures = {
        "seconds": round(seconds, 4),
        "examples_per_second": round(n / seconds, 4),
        "new_tokens": tokens,
        "new_tokens_per_second": round(tokens / seconds, 2),
        "stopped_at_eos": sum(o.stopped_at_eos for o in outputs),
        "accuracy": round(correct / n, 4),
    }
    return seconds, outputs, figures


def tiny_model() -> tuple[Any, Any]:
    """The generation benchmark's tiny random LLaMA and character-level tokenizer (no download)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generation_benchmark", Path(__file__).with_name("generation.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="model to load (default: the embedded one)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random LLaMA instead (seconds; for CI)")
    parser.add_argument("--n", type=int, default=None, help="number of MultiArith problems (default 32; --tiny: 6)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size of the batched ways (default 16)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="budget (default 256, the math one)")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="folder holding dataset/MultiArith/test.json")
    parser.add_argument("--skip-single", action="store_true", help="leave out one at a time (the slow way)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--min-ratio", type=float, default=None, help="exit 1 if batched/single is below this")
    args = parser.parse_args(argv)
    args.n = args.n or (6 if args.tiny else 32)
    args.max_new_tokens = args.max_new_tokens or (24 if args.tiny else 256)

    from llm_adapters_eval.generation import GenerationSettings, generate
    from llm_adapters_eval.per_task import build_prompts, resolve_template
    from llm_adapters_templates import DEFAULT_TEMPLATE

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    if args.tiny:
        model, tok = tiny_model()
        name = "tiny random LLaMA"
    else:
        from llm_adapters.models import load_model

        model, tok = load_model(args.model, dtype="float32")
        name = args.model
    task, data = examples(args.n, args.data_dir)
    prompts = build_prompts(task, data, resolve_template(DEFAULT_TEMPLATE, tok))
    lengths = [len(ids) for ids in tok(prompts)["input_ids"]]
    common = {"max_new_tokens": args.max_new_tokens, "stop_at_eos": True}
    single = GenerationSettings(batch_size=1, **common)
    batched = GenerationSettings(batch_size=args.batch_size, **common)
    generate(model, tok, prompts[:2], GenerationSettings(max_new_tokens=4, batch_size=2))  # warm-up

    ways: dict[str, Callable[[], list[Any]]] = {}
    if not args.skip_single:
        ways["one_at_a_time"] = lambda: generate(model, tok, prompts, single)
    ways["batched"] = lambda: generate(model, tok, prompts, batched)
    ways["hf_generate_batched"] = lambda: hf_generate(model, tok, prompts, batched)
    figures: dict[str, Any] = {
        "model": name,
        "problems": f"MultiArith ({args.data_dir / 'dataset' / 'MultiArith' / 'test.json'})",
        "examples": len(prompts),
        "prompt_tokens": [min(lengths), max(lengths)],
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
    }
    texts: dict[str, list[str]] = {}
    for key, way in ways.items():
        _, outputs, figures[key] = timed(way, task, data)
        texts[key] = [o.text for o in outputs]
    load_after = os.getloadavg()
    seconds = {k: figures[k]["seconds"] for k in ways}
    figures["same_answers"] = len({tuple(t) for t in texts.values()}) == 1
    if "one_at_a_time" in seconds:
        figures["ratio_batched_over_single"] = round(seconds["one_at_a_time"] / seconds["batched"], 2)
        figures["target_met"] = figures["ratio_batched_over_single"] >= TARGET
    figures["ratio_batched_over_hf_generate"] = round(seconds["hf_generate_batched"] / seconds["batched"], 2)
    figures.update(
        {
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
    )

    print(
        f"model: {name}; {len(prompts)} MultiArith problems (prompts of {figures['prompt_tokens'][0]} to "
        f"{figures['prompt_tokens'][1]} tokens); up to {args.max_new_tokens} new tokens, greedy, EOS stopping"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average "
        f"{load_before[0]:.2f} before / {load_after[0]:.2f} after"
    )
    labels = {
        "one_at_a_time": "one at a time",
        "batched": f"batch {args.batch_size}",
        "hf_generate_batched": f"HF generate, batch {args.batch_size}",
    }
    for key in ways:
        f = figures[key]
        print(
            f"{labels[key]:>24}: {f['seconds']:8.2f} s  {f['examples_per_second']:7.3f} examples/s  "
            f"{f['new_tokens_per_second']:7.1f} new tokens/s  {f['new_tokens']:6d} new tokens "
            f"({f['stopped_at_eos']}/{len(prompts)} ended at EOS)  accuracy {100 * f['accuracy']:.1f}%"
        )
    print(f"{'same answers':>24}: {'yes' if figures['same_answers'] else 'NO'}")
    if "ratio_batched_over_single" in figures:
        verdict = "met" if figures["target_met"] else "NOT met"
        print(
            f"{'batched / one at a time':>24}: {figures['ratio_batched_over_single']:.2f}x "
            f"(target {TARGET:g}x: {verdict})"
        )
    print(f"{'batched / HF generate':>24}: {figures['ratio_batched_over_hf_generate']:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    ratio = figures.get("ratio_batched_over_single")
    if args.min_ratio is not None and ratio is not None and ratio < args.min_ratio:
        print(f"ratio {ratio} is below --min-ratio {args.min_ratio}", file=sys.stderr)
        return 1
    return 0 if figures["same_answers"] else 2


if __name__ == "__main__":
    sys.exit(main())
