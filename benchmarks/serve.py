"""``llm-adapters serve`` under load: eight concurrent clients, each on its own adapter, against the same requests
sent one at a time. Batching pays off when the concurrent run finishes the same work in less time.

    python benchmarks/serve.py                                # the embedded SmolLM2-135M, 8 clients x 4 requests
    python benchmarks/serve.py --tiny --requests 2 --max-tokens 8   # a tiny random LLaMA: a smoke test
    python benchmarks/serve.py --min-ratio 2.0                # exit 1 when batching gains less than 2x

The server runs in-process on a free loopback port (the real HTTP layer and scheduler) with ``--clients`` LoRA
adapters (r=16 on q, k, v, o, up, down, random non-zero weights) attached to the model. The same list of
requests (``--clients`` x ``--requests``, greedy, ``--max-tokens`` each; client ``i`` asks adapter ``i``) runs
twice, interleaved ``--rounds`` times in alternating order:

* ``sequential``: one client sends every request and waits for each answer before the next;
* ``concurrent``: ``--clients`` threads, each sending its requests one after another to its own adapter.

Printed: wall time, generated tokens per second, and p50 / p90 latency per request for each way, the mean number
of requests per decoding run (those it started with and those that joined it, at most ``--max-batch-size`` at
once), and the throughput ratio concurrent / sequential. Greedy decoding gives both
ways the same tokens, so the ratio compares the same work.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

import llm_adapters as la

TARGETS = ["attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down"]
QUESTIONS = [
    "Anna has {a} apples and buys {b} more. How many apples does she have now?",
    "A train travels {a} km in the morning and {b} km in the afternoon. How far does it travel?",
    "Tom shares {a} marbles equally among {b} friends. How many does each friend get?",
    "A shop sells {a} pens on Monday and {b} pens on Tuesday. How many pens does it sell?",
]


def build(tiny: bool, model: str | None) -> tuple[Any, Any, str]:
    if tiny:
        from llm_adapters.testing import tiny_model_from_config, tiny_tokenizer

        cfg = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
               "max_position_embeddings": 512, "bos_token_id": 1, "eos_token_id": 2}  # fmt: skip
        return tiny_model_from_config(cfg), tiny_tokenizer(), "tiny-llama"
    name = model or "smollm2-135m"
    lm, tokenizer = la.load_model(name, dtype="float32")
    return lm, tokenizer, name


def attach_adapters(model: Any, count: int) -> list[str]:
    g = torch.Generator().manual_seed(0)
    names = [f"client{i}" for i in range(count)]
    for n in names:
        la.attach(model, {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": TARGETS}, name=n)
        with torch.no_grad():
            for p in la.engine.adapter_parameters(model, n).values():
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    return names


def post(port: int, body: dict[str, Any]) -> tuple[float, int]:
    """One completion request on a fresh connection: (seconds, completion tokens)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    data = json.loads(res.read())
    conn.close()
    if res.status != 200:
        raise RuntimeError(f"request failed: {res.status} {data}")
    return time.perf_counter() - start, int(data["usage"]["completion_tokens"])


def run_way(way: str, port: int, jobs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Run every client's requests, one at a time (``sequential``) or each client in its own thread."""
    results: list[list[tuple[float, int]]] = [[] for _ in jobs]
    together = threading.Barrier(len(jobs) if way == "concurrent" else 1)

    def client(i: int) -> None:
        if way == "concurrent":
            together.wait()  # every client starts at once
        for body in jobs[i]:
            results[i].append(post(port, body))

    start = time.perf_counter()
    if way == "sequential":
        for i in range(len(jobs)):
            client(i)
    else:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    wall = time.perf_counter() - start
    latencies = [s for r in results for s, _ in r]
    tokens = sum(n for r in results for _, n in r)
    return {"wall": wall, "tokens": tokens, "latencies": latencies}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="A tiny random LLaMA instead of SmolLM2-135M.")
    parser.add_argument("--model", default=None, help="Any model load_model takes (default: smollm2-135m).")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients, one adapter each.")
    parser.add_argument("--requests", type=int, default=4, help="Requests per client.")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="The server's wait for more requests.")
    parser.add_argument("--rounds", type=int, default=1, help="Times each way runs (alternating order).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--min-ratio", type=float, default=None, help="Exit 1 below this throughput ratio.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from llm_adapters_serve.host import ModelHost
    from llm_adapters_serve.server import start_server
    from llm_adapters_serve.settings import ServeSettings

    model, tokenizer, base = build(args.tiny, args.model)
    names = attach_adapters(model, args.clients)
    host = ModelHost(model, tokenizer, base, {n: "(random)" for n in names})
    host.prepare()
    jobs = [
        [
            {
                "model": names[i],
                "prompt": QUESTIONS[(i + k) % len(QUESTIONS)].format(a=3 + 7 * i + k, b=2 + k),
                "max_tokens": args.max_tokens,
                "temperature": 0,
            }
            for k in range(args.requests)
        ]
        for i in range(args.clients)
    ]
    settings = ServeSettings(port=0, max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms)
    figures: dict[str, list[dict[str, Any]]] = {"sequential": [], "concurrent": []}
    with start_server(host, settings) as running:
        post(running.port, {**jobs[0][0], "max_tokens": 2})  # warm-up
        history = running.scheduler.history
        for r in range(args.rounds):
            for way in ("sequential", "concurrent") if r % 2 == 0 else ("concurrent", "sequential"):
                before = len(history)
                result = run_way(way, running.port, jobs)
                while not running.scheduler.idle():  # answers come before their run ends: wait for its record
                    time.sleep(0.01)
                sizes = [b.size for b in list(history)[before:]]
                result["mean_batch"] = statistics.mean(sizes) if sizes else 0.0
                figures[way].append(result)

    rows = {}
    print(f"{base}: {args.clients} clients x {args.requests} requests x up to {args.max_tokens} tokens, greedy")
    print(f"{'way':<12} {'wall s':>8} {'tokens/s':>9} {'p50 s':>7} {'p90 s':>7} {'reqs/run':>11}")
    for way, runs in figures.items():
        wall = statistics.median(r["wall"] for r in runs)
        tokens = runs[0]["tokens"]
        latencies = [s for r in runs for s in r["latencies"]]
        rows[way] = {
            "wall_s": wall,
            "tokens": tokens,
            "tokens_per_s": tokens / wall,
            "p50_s": percentile(latencies, 0.5),
            "p90_s": percentile(latencies, 0.9),
            "mean_batch": statistics.mean(r["mean_batch"] for r in runs),
        }
        row = rows[way]
        print(
            f"{way:<12} {wall:8.2f} {row['tokens_per_s']:9.1f} {row['p50_s']:7.2f} {row['p90_s']:7.2f} "
            f"{row['mean_batch']:11.2f}"
        )
    if rows["sequential"]["tokens"] != rows["concurrent"]["tokens"]:
        print("note: the two ways generated different numbers of tokens (the ratio compares tokens per second)")
    ratio = rows["concurrent"]["tokens_per_s"] / rows["sequential"]["tokens_per_s"]
    print(f"throughput, concurrent / sequential: {ratio:.2f}x")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": base, "clients": args.clients, "requests": args.requests, "max_tokens": args.max_tokens,
                   "ratio": ratio, "ways": rows}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if args.min_ratio is not None and ratio < args.min_ratio else 0


if __name__ == "__main__":
    sys.exit(main())
