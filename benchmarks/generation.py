"""Generation throughput: the same problems one at a time and in one left-padded batch.

The evaluation protocol of the reference generated one example at a time; ``llm_adapters_eval.generation``
generates in left-padded batches with attention masks and the KV cache. This script measures the difference
on the same prompts: by default 16 GSM8K problems in the training template, greedy decoding, exactly 64 new
tokens each (EOS stopping off, so both ways do the same work), on the embedded SmolLM2-135M in float32.

Printed: seconds, examples per second and new tokens per second of each way, the ratio (batched over one at a
time), and the machine's load average before and after (the figures are only as quiet as the machine). With
``--rounds N`` the two ways alternate N times and the best time of each is kept. On a machine shared with
other jobs, ``--threads 1`` avoids the thread contention that can slow a 2-thread run by an order of
magnitude (it hits both ways alike).

    python benchmarks/generation.py                    # SmolLM2-135M, 16 x 64 tokens (about a minute)
    python benchmarks/generation.py --tiny             # a tiny random LLaMA: a smoke test for CI
    python benchmarks/generation.py --json runs/generation.json --min-ratio 6
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import string
import sys
import time
from pathlib import Path
from typing import Any

import torch

from llm_adapters.template import get_template
from llm_adapters_eval.generation import GenerationSettings, generate
from llm_adapters_templates import DEFAULT_TEMPLATE

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "llm-adapters" / "dataset" / "gsm8k"
FALLBACK = [
    "Tom has {a} apples and buys {b} more. How many apples does he have now?",
    "A box holds {a} pencils. How many pencils are in {b} boxes?",
    "Sara had {a} dollars and spent {b} dollars. How much money does she have left?",
    "There are {a} birds on a tree and {b} fly away. How many birds are left?",
]


def problems(n: int, data_dir: Path | None) -> tuple[list[str], str]:
    """``n`` GSM8K instructions (the first of the test set), or generated arithmetic problems without it."""
    path = (data_dir / "dataset" / "gsm8k" / "test.json") if data_dir else DATA / "test.json"
    if path.is_file():
        records = json.loads(path.read_text())
        return [r["instruction"] for r in records[:n]], f"GSM8K ({path})"
    out = [FALLBACK[i % len(FALLBACK)].format(a=7 + 3 * i, b=2 + i) for i in range(n)]
    return out, "generated arithmetic problems (GSM8K not found)"


def tiny() -> tuple[Any, Any]:
    """A tiny random LLaMA and a character-level tokenizer (no download)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<unk>", "<s>", "</s>"])}
    for ch in string.printable:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=0,
        eos_token_id=3,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval(), tok


def timed(model: Any, tok: Any, prompts: list[str], settings: GenerationSettings) -> tuple[float, int]:
    start = time.perf_counter()
    out = generate(model, tok, prompts, settings)
    return time.perf_counter() - start, sum(g.num_tokens for g in out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="model to load (default: the embedded one)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random LLaMA instead (seconds; for CI)")
    parser.add_argument("--n", type=int, default=None, help="number of problems (default 16; --tiny: 8)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size of the batched way (default: n)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="new tokens per problem (64; --tiny: 8)")
    parser.add_argument("--stop-at-eos", action="store_true", help="stop at EOS (unequal work per prompt)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two ways N times, keep the best")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding dataset/gsm8k/test.json")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--min-ratio", type=float, default=None, help="exit 1 if batched/single is below this")
    args = parser.parse_args(argv)
    args.n = args.n or (8 if args.tiny else 16)
    args.batch_size = args.batch_size or args.n
    args.max_new_tokens = args.max_new_tokens or (8 if args.tiny else 64)

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    if args.tiny:
        model, tok = tiny()
        name = "tiny random LLaMA"
    else:
        from llm_adapters.models import load_model

        model, tok = load_model(args.model, dtype="float32")
        name = args.model
    texts, source = problems(args.n, args.data_dir)
    template = get_template(DEFAULT_TEMPLATE)
    prompts = [template.prompt(t) for t in texts]
    common = {"max_new_tokens": args.max_new_tokens, "stop_at_eos": args.stop_at_eos}
    single_settings = GenerationSettings(batch_size=1, **common)
    batched_settings = GenerationSettings(batch_size=args.batch_size, **common)
    generate(model, tok, prompts[:2], GenerationSettings(max_new_tokens=4, batch_size=2))  # warm-up

    single_s, batched_s = float("inf"), float("inf")
    single_tokens = batched_tokens = 0
    for _ in range(max(args.rounds, 1)):
        s, single_tokens = timed(model, tok, prompts, single_settings)
        single_s = min(single_s, s)
        b, batched_tokens = timed(model, tok, prompts, batched_settings)
        batched_s = min(batched_s, b)
    load_after = os.getloadavg()

    n = len(prompts)
    figures = {
        "model": name,
        "problems": source,
        "examples": n,
        "max_new_tokens": args.max_new_tokens,
        "stop_at_eos": args.stop_at_eos,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "one_at_a_time": {
            "seconds": round(single_s, 6),
            "examples_per_second": round(n / single_s, 4),
            "new_tokens_per_second": round(single_tokens / single_s, 2),
        },
        "batched": {
            "seconds": round(batched_s, 6),
            "examples_per_second": round(n / batched_s, 4),
            "new_tokens_per_second": round(batched_tokens / batched_s, 2),
        },
        "ratio": round(single_s / batched_s, 2),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    print(f"model: {name}; {n} problems from {source}; {args.max_new_tokens} new tokens each, greedy")
    print(
        f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average "
        f"{load_before[0]:.2f} before / {load_after[0]:.2f} after"
    )
    for label, key in (("one at a time", "one_at_a_time"), (f"batch {args.batch_size}", "batched")):
        f = figures[key]
        print(
            f"{label:>14}: {f['seconds']:8.2f} s  {f['examples_per_second']:7.3f} examples/s  "
            f"{f['new_tokens_per_second']:7.1f} new tokens/s"
        )
    print(f"{'ratio':>14}: {figures['ratio']:.2f}x the examples per second")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.min_ratio is not None and figures["ratio"] < args.min_ratio:
        print(f"ratio {figures['ratio']} is below --min-ratio {args.min_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
