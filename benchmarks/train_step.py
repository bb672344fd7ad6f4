"""Training-step time of each adapter type against the frozen-base floor, and of our LoRA against HF PEFT's.

One run, one model (the embedded SmolLM2-135M, or with ``--tiny`` a tiny random LLaMA for CI), float32,
a batch of 4 x 128 tokens. Variants:

* ``floor``: the frozen base with gradients flowing to the input embeddings' output only (what
  ``enable_input_require_grads`` does): the least any adapter's training step can cost;
* ``series``: AdapterP (after mlp.down), bottleneck 256;
* ``parallel``: parallel adapter on mlp.up and mlp.down, bottleneck 256;
* ``lora-r32`` / ``peft-lora-r32``: ours and PEFT's LoRA at the paper's setting, r=32, alpha=64, dropout 0.05
  on q, k, v, up, down;
* ``lora-r8`` / ``peft-lora-r8``: the same with r=8, alpha=16;
* ``lora-r8-qv`` / ``peft-lora-r8-qv``: r=8, alpha=16 on q and v only (the original LoRA placement).

Each variant's arithmetic is counted too (``torch.utils.flop_counter``): ``flops x floor`` is what the step
would cost if every extra FLOP ran at the floor's speed, so ``x floor`` over it is the overhead beyond the
arithmetic. ``--targets`` prints whether the performance targets hold (see benchmarks/README.md) and
``--memory`` measures each variant's peak memory growth during a step in a fresh process of its own.

A step is forward, backward and (for adapters) a step of fused AdamW (the Trainer's default). Every variant
shares the same frozen base tensors. After a warm-up, steps run in rounds that visit every variant in a rotating
order, so that load on the machine falls on all variants alike; the figure per variant is the median over rounds,
and each ratio the median over rounds of the two variants' ratio in that round. Printed: median
seconds per step, tokens per second, the ratio to the floor, and our LoRA's ratio to PEFT's at the same
setting (<= 1.0: ours is no slower).

    python benchmarks/train_step.py                  # SmolLM2-135M (about a minute per round on 2 cores)
    python benchmarks/train_step.py --tiny --steps 3 # seconds
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import llm_adapters as la

BATCH, SEQ = 4, 128
BEST = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
QV = ["q_proj", "v_proj"]
ALL_VARIANTS = "floor,series,parallel,lora-r32,peft-lora-r32,lora-r8,peft-lora-r8,lora-r8-qv,peft-lora-r8-qv"
#: variant -> (most x floor, most x its own arithmetic (flops x floor), most x PEFT's same setting)
TARGETS: dict[str, tuple[float | None, float | None, float | None]] = {
    "lora-r32": (1.10, None, 0.85),
    "lora-r8-qv": (1.05, None, None),
    "series": (1.10, None, None),
    "parallel": (None, 1.10, None),
}
TINY_LLAMA = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}


@dataclass
class Variant:
    name: str
    what: str
    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    trainable: int
    times: list[float] = field(default_factory=list)


# ---- models -----------------------------------------------------------------------------------------
def load_base(tiny: bool) -> nn.Module:
    if tiny:
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**TINY_LLAMA))
    else:
        model, _ = la.load_model("smollm2-135m", dtype="float32", device="cpu")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def sharing_copy(base: nn.Module) -> nn.Module:
    """A deep copy whose parameters are the base's own (frozen) tensors: variants cost no extra weights."""
    memo: dict[int, Any] = {id(p): p for p in base.parameters()}
    return copy.deepcopy(base, memo)


def floor_model(base: nn.Module) -> nn.Module:
    model = sharing_copy(base)

    def needs_grad(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        output.requires_grad_(True)

    model.get_input_embeddings().register_forward_hook(needs_grad)
    return model


def ours(base: nn.Module, config: dict[str, Any]) -> nn.Module:
    model = sharing_copy(base)
    la.attach(model, config)
    return model


def peft_lora(base: nn.Module, r: int, alpha: int, targets: list[str] = BEST) -> nn.Module:
    import peft

    cfg = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.05, target_modules=targets, task_type="CAUSAL_LM")
    return peft.get_peft_model(sharing_copy(base), cfg)


def build_variants(base: nn.Module, names: list[str]) -> tuple[list[Variant], list[str]]:
    installed = set(la.adapter_types())
    has_family = la.engine.model_family(base) is not None
    builders: dict[str, tuple[str, str | None, Callable[[], nn.Module]]] = {
        "floor": ("frozen base, gradients to the input only", None, lambda: floor_model(base)),
        "series": (
            "series AdapterP (after mlp.down), bottleneck 256",
            "series",
            lambda: ours(base, {"type": "series", "variant": "adapterp", "bottleneck_size": 256}),
        ),
        "parallel": (
            "parallel on mlp.up + mlp.down, bottleneck 256",
            "parallel",
            lambda: ours(base, {"type": "parallel", "preset": "paper-best", "bottleneck_size": 256}),
        ),
        "lora-r32": (
            "our LoRA r=32 alpha=64 on q,k,v,up,down",
            "lora",
            lambda: ours(base, {"type": "lora", "r": 32, "alpha": 64, "dropout": 0.05, "target_modules": BEST}),
        ),
        "peft-lora-r32": ("PEFT LoRA, same setting", "peft", lambda: peft_lora(base, 32, 64)),
        "lora-r32-p0": (
            "our LoRA r=32 as lora-r32, without dropout (what the dropout costs)",
            "lora",
            lambda: ours(base, {"type": "lora", "r": 32, "alpha": 64, "dropout": 0.0, "target_modules": BEST}),
        ),
        "lora-r8": (
            "our LoRA r=8 alpha=16 on q,k,v,up,down",
            "lora",
            lambda: ours(base, {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": BEST}),
        ),
        "peft-lora-r8": ("PEFT LoRA, same setting", "peft", lambda: peft_lora(base, 8, 16)),
        "lora-r8-qv": (
            "our LoRA r=8 alpha=16 on q,v",
            "lora",
            lambda: ours(base, {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": QV}),
        ),
        "peft-lora-r8-qv": ("PEFT LoRA, same setting", "peft", lambda: peft_lora(base, 8, 16, QV)),
    }
    variants, notes = [], []
    for name in names:
        if name not in builders:
            raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(builders)}")
        what, needs, build = builders[name]
        if needs in ("series", "parallel") and needs not in installed:
            notes.append(f"{name}: skipped, the adapter type {needs!r} is not installed (llm-adapters-{needs})")
            continue
        if needs in ("series", "parallel") and not has_family:
            notes.append(f"{name}: skipped, no installed model family covers {base.config.model_type!r}")
            continue
        if needs == "lora" and "lora" not in installed:
            notes.append(f"{name}: skipped, the adapter type 'lora' is not installed (llm-adapters-lora)")
            continue
        if needs == "peft":
            try:
                import peft  # noqa: F401
            except ImportError:
                notes.append(f"{name}: skipped, peft is not installed")
                continue
        model = build()
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        # fused AdamW: what `llm-adapters train` runs (the Trainer's default optimizer, "adamw_torch_fused")
        optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True) if params else None
        variants.append(Variant(name, what, model, optimizer, sum(p.numel() for p in params)))
    return variants, notes


# ---- arithmetic and memory --------------------------------------------------------------------------
def step_flops(v: Variant, ids: torch.Tensor) -> int:
    """FLOPs of one training step (forward and backward; the optimizer's elementwise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        v.model(input_ids=ids, labels=ids).loss.backward()
    v.model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_growth(v: Variant, ids: torch.Tensor) -> int:
    """Peak resident-memory growth over one training step, sampled every millisecond (after a warm-up step, so
    the optimizer state and allocator pools exist)."""
    import threading

    train_step(v, ids)
    start, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    train_step(v, ids)
    done.set()
    thread.join()
    return max(peak[0], _rss()) - start


def memory_in_subprocesses(names: list[str], args: argparse.Namespace) -> dict[str, int]:
    """``peak_growth`` of each variant, each in a fresh process (peaks of one process do not mix)."""
    import subprocess

    out = {}
    for name in names:
        cmd = [sys.executable, __file__, "--memory-child", name] + (["--tiny"] if args.tiny else [])
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"memory of {name}: failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
            continue
        out[name] = int(proc.stdout.strip().splitlines()[-1])
        print(f"memory {name}: {out[name] / 2**20:.0f} MiB peak growth", file=sys.stderr, flush=True)
    return out


# ---- timing -----------------------------------------------------------------------------------------
def train_step(v: Variant, ids: torch.Tensor) -> float:
    start = time.perf_counter()
    loss = v.model(input_ids=ids, labels=ids).loss
    loss.backward()
    if v.optimizer is not None:
        v.optimizer.step()
        v.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def run(variants: list[Variant], ids: torch.Tensor, warmup: int, steps: int) -> None:
    for _ in range(warmup):
        for v in variants:
            train_step(v, ids)
    for i in range(steps):
        shift = i % len(variants)
        for v in variants[shift:] + variants[:shift]:  # rotate the order from round to round
            v.times.append(train_step(v, ids))
        done = ", ".join(f"{v.name} {v.times[-1]:.3f}s" for v in variants)
        print(f"round {i + 1}/{steps}: {done}", file=sys.stderr, flush=True)


def report(
    variants: list[Variant],
    notes: list[str],
    args: argparse.Namespace,
    flops: dict[str, int] | None = None,
    memory: dict[str, int] | None = None,
) -> dict[str, Any]:
    med = {v.name: statistics.median(v.times) for v in variants}
    floor = med.get("floor")
    times = {v.name: v.times for v in variants}

    def paired(a: str, b: str) -> float:
        """The median over rounds of ``a``'s time over ``b``'s in the same round: load that drifts from round to
        round (on a shared machine it moves every step by 10-30%) falls on both sides of each ratio."""
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    flops, memory = flops or {}, memory or {}
    rows = []
    for v in variants:
        share = flops[v.name] / flops["floor"] if v.name in flops and flops.get("floor") else None
        rows.append(
            {
                "variant": v.name,
                "what": v.what,
                "trainable": v.trainable,
                "median_s": med[v.name],
                "min_s": min(v.times),
                "times_s": list(v.times),  # one per round, in round order
                "tokens_per_s": BATCH * SEQ / med[v.name],
                "ratio_to_floor": paired(v.name, "floor") if floor else None,
                "flops_ratio_to_floor": share,
                "peak_memory_growth_bytes": memory.get(v.name),
            }
        )
    pairs = {}
    for ours_name in ("lora-r32", "lora-r8", "lora-r8-qv"):
        theirs = f"peft-{ours_name}"
        if ours_name in med and theirs in med:
            pairs[f"{ours_name} / {theirs}"] = paired(ours_name, theirs)
    targets = []
    by_name = {r["variant"]: r for r in rows}
    for name, (most_floor, most_arith, most_peft) in TARGETS.items():
        row = by_name.get(name)
        if row is None:
            continue
        if most_floor is not None and row["ratio_to_floor"] is not None:
            targets.append((f"{name} x floor", row["ratio_to_floor"], most_floor))
        if most_arith is not None and row["ratio_to_floor"] and row["flops_ratio_to_floor"]:
            targets.append(
                (f"{name} x its arithmetic", row["ratio_to_floor"] / row["flops_ratio_to_floor"], most_arith)
            )
        if most_peft is not None and f"{name} / peft-{name}" in pairs:
            targets.append((f"{name} / peft-{name}", pairs[f"{name} / peft-{name}"], most_peft))
    for name in ("lora-r32", "lora-r8", "lora-r8-qv"):
        if memory.get(name) is not None and memory.get(f"peft-{name}") is not None:
            targets.append((f"{name} memory / peft-{name}", memory[name] / max(memory[f"peft-{name}"], 1), 1.0))
    return {
        "targets": [{"what": w, "value": val, "at_most": most, "met": val <= most} for w, val, most in targets],
        "model": "tiny random LLaMA" if args.tiny else "SmolLM2-135M (embedded)",
        "batch": [BATCH, SEQ],
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "warmup": args.warmup,
        "steps": args.steps,
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rows": rows,
        "lora_vs_peft": pairs,
        "notes": notes,
    }


def print_report(result: dict[str, Any]) -> None:
    print(
        f"train step, {result['model']}, batch {result['batch'][0]} x {result['batch'][1]} tokens, "
        f"{result['dtype']}, {result['threads']} threads, median of {result['steps']} steps after "
        f"{result['warmup']} warm-up; ratios are medians of same-round ratios"
    )
    print(
        f"{'variant':<16} {'trainable':>12} {'s/step':>9} {'tokens/s':>9} {'x floor':>8} {'flops x':>8} "
        f"{'peak MiB':>9}  what"
    )
    for r in result["rows"]:
        ratio = f"{r['ratio_to_floor']:.3f}" if r["ratio_to_floor"] is not None else "-"
        share = f"{r['flops_ratio_to_floor']:.3f}" if r["flops_ratio_to_floor"] is not None else "-"
        mem = r["peak_memory_growth_bytes"]
        mem_s = f"{mem / 2**20:.0f}" if mem is not None else "-"
        print(
            f"{r['variant']:<16} {r['trainable']:>12,} {r['median_s']:>9.4f} {r['tokens_per_s']:>9.0f} "
            f"{ratio:>8} {share:>8} {mem_s:>9}  {r['what']}"
        )
    for pair, ratio in result["lora_vs_peft"].items():
        verdict = "no slower than PEFT" if ratio <= 1.0 else "SLOWER than PEFT"
        print(f"{pair}: {ratio:.3f} ({verdict})")
    for t in result.get("targets", []):
        print(f"target {t['what']}: {t['value']:.3f} (at most {t['at_most']}): {'met' if t['met'] else 'NOT met'}")
    for note in result["notes"]:
        print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny random LLaMA instead of SmolLM2-135M (CI)")
    parser.add_argument("--steps", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up rounds, not measured (default 1)")
    parser.add_argument(
        "--variants",
        default=ALL_VARIANTS,
        help="comma-separated variants to run (default: all)",
    )
    parser.add_argument("--memory", action="store_true", help="also measure peak memory, one process per variant")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    parser.add_argument(
        "--max-lora-ratio",
        type=float,
        default=None,
        help="exit with status 1 if our LoRA / PEFT LoRA exceeds this ratio (e.g. 1.0)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation chatter from the libraries
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = load_base(args.tiny)
    ids = torch.randint(0, base.config.vocab_size, (BATCH, SEQ), generator=torch.Generator().manual_seed(0))
    if args.memory_child:
        [v], _ = build_variants(base, [args.memory_child])
        print(peak_growth(v, ids))
        return 0
    variants, notes = build_variants(base, [n.strip() for n in args.variants.split(",") if n.strip()])
    if not variants:
        print("nothing to run: " + "; ".join(notes), file=sys.stderr)
        return 2
    flops = {v.name: step_flops(v, ids) for v in variants}
    run(variants, ids, args.warmup, args.steps)
    memory = memory_in_subprocesses([v.name for v in variants], args) if args.memory else None
    result = report(variants, notes, args, flops, memory)
    print_report(result)
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
    worst = max(result["lora_vs_peft"].values(), default=None)
    if args.max_lora_ratio is not None and worst is not None and worst > args.max_lora_ratio:
        print(f"our LoRA is slower than PEFT's: {worst:.3f} > {args.max_lora_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
