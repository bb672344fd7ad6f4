"""Several LoRA adapters in one batch (``adapter_names``): what a batch of 16 rows spread over 4 adapters costs
against the same batch on one adapter, measured in the same run.

    python benchmarks/multi_adapter.py                   # the embedded SmolLM2-135M, 16 x 128 tokens
    python benchmarks/multi_adapter.py --tiny --rounds 2 # a tiny random LLaMA: a smoke test for CI
    python benchmarks/multi_adapter.py --max-ratio 1.3   # exit 1 if the mixed batch costs more than 1.3x

Four LoRA adapters (r=16 on q, k, v, o, up, down, random non-zero weights) are attached. Three ways run the same
forward pass (no gradients, float32), interleaved round by round in a rotated order so that load hits all
alike; each figure is the median over ``--rounds``:

* ``one adapter``: the 16 rows on one active adapter (the ordinary forward);
* ``one adapter, routed``: ``adapter_names`` naming that one adapter for every row;
* ``four adapters, routed``: ``adapter_names`` giving 4 rows to each of the 4 adapters.

Printed: seconds per forward and the ratio of each to ``one adapter``. The target: four adapters routed cost
at most 1.3x one adapter (k full passes would cost about 4x the adapters' share, and more).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import llm_adapters as la

TARGETS = ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down"]


def build(tiny: bool) -> Any:
    if tiny:
        from llm_adapters.testing import tiny_model_from_config

        cfg = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256}  # fmt: skip
        return tiny_model_from_config(cfg)
    model, _ = la.load_model("smollm2-135m", dtype="float32", device="cpu")
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="A tiny random LLaMA instead of SmolLM2-135M.")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--max-ratio", type=float, default=None, help="Exit 1 above this four-vs-one ratio.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build(args.tiny)
    g = torch.Generator().manual_seed(0)
    names = ["a", "b", "c", "d"]
    for n in names:
        la.attach(model, {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": TARGETS}, name=n)
        with torch.no_grad():
            for p in la.engine.adapter_parameters(model, n).values():
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    la.set_active(model, ["a"])
    model.eval()
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (args.rows, args.tokens), generator=g)
    per = args.rows // len(names)
    ways = {
        "one adapter": {},
        "one adapter, routed": {"adapter_names": ["a"] * args.rows},
        "four adapters, routed": {"adapter_names": [n for n in names for _ in range(per)]},
    }
    times: dict[str, list[float]] = {w: [] for w in ways}
    order = list(ways)
    with torch.no_grad():
        for w in order:  # warm-up
            model(input_ids=ids, **ways[w])
        for r in range(args.rounds):
            for w in order[r % 3 :] + order[: r % 3]:
                start = time.perf_counter()
                model(input_ids=ids, **ways[w])
                times[w].append(time.perf_counter() - start)
    base = statistics.median(times["one adapter"])
    rows = []
    print(f"{'way':<24} {'s / forward':>12} {'x one adapter':>14}")
    for w in order:
        m = statistics.median(times[w])
        rows.append({"way": w, "seconds": m, "ratio": m / base})
        print(f"{w:<24} {m:12.4f} {m / base:14.3f}")
    ratio = rows[-1]["ratio"]
    print(f"four adapters in one batch: {ratio:.2f}x one adapter ({args.rows} rows x {args.tokens} tokens)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": args.rows, "tokens": args.tokens, "results": rows}, indent=2) + "\n")
    return 1 if args.max_ratio is not None and ratio > args.max_ratio else 0


if __name__ == "__main__":
    sys.exit(main())
