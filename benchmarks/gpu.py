"""LoRA training on one GPU at real size: a 1B-class LLaMA in bfloat16 and in 4-bit (QLoRA), llm-adapters
against PEFT on the same model, in the same run.

    python benchmarks/gpu.py                          # bf16 and 4-bit, ours and PEFT's, batch 8 x 512
    python benchmarks/gpu.py --variants ours-4bit,peft-4bit --steps 20
    python benchmarks/gpu.py --layers 4 --steps 3     # a quick check that everything runs
    python benchmarks/gpu.py --json gpu.json          # the table as JSON too

The model is built from a LLaMA config of the TinyLlama-1.1B shape (hidden 2048, 22 layers, 32 heads, 4
key/value heads, MLP 5632, vocabulary 32000) with random weights, saved once as a bf16 safetensors checkpoint in
a temporary directory, and loaded from there for every variant: ``bf16`` in bfloat16, ``4bit`` quantized by
bitsandbytes while loading (NF4, double quantization, bf16 compute), the same way for both libraries.

LoRA r=16, alpha=32, no dropout, on every linear layer of the blocks (q, k, v, o, gate, up, down). One
training step = forward and backward under bf16 autocast on a batch of 8 x 512 random tokens (labels = inputs),
then an AdamW step over the adapter's parameters (float32 in both libraries). Quantized variants are prepared
the QLoRA way: ours with ``llm_adapters_train.kbit.prepare_kbit_training``, PEFT's with its
``prepare_model_for_kbit_training``, gradient checkpointing off in both unless ``--gradient-checkpointing``.

Printed per variant: the median seconds per step over ``--steps`` timed steps (after ``--warmup``), tokens per
second, the peak GPU memory (``torch.cuda.max_memory_allocated``, counted from the model's load) and the loss
of the first step (both libraries start from B = 0, so their first losses are the base model's and must agree).
Ours / PEFT ratios follow for each precision. Needs a CUDA GPU, bitsandbytes (4-bit) and peft (its variants).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LLAMA_1B = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
#: where everything runs (tests point it at the CPU to dry-run the script on a tiny model)
DEVICE = "cuda"
LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VARIANTS = ("ours-bf16", "peft-bf16", "ours-4bit", "peft-4bit")


def require_gpu() -> None:
    """Exit (status 1) with a clear message unless a CUDA GPU is visible."""
    import torch

    if DEVICE == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "benchmarks/gpu.py measures training on a CUDA GPU, but none is visible here (torch.cuda.is_available() "
            "is False); run it on a machine with an NVIDIA GPU and a CUDA build of torch"
        )


def build_checkpoint(directory: Path, layers: int) -> Path:
    """A random 1B-class LLaMA, saved in bf16 (built on the GPU: faster, and the CPU needs no 4 GB)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{**LLAMA_1B, "num_hidden_layers": layers})
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    del model
    _free()
    return directory


def load(checkpoint: Path, quantized: bool) -> Any:
    """The model of one variant, on GPU 0; loaded the same way for both libraries."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if quantized:
        q = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        return AutoModelForCausalLM.from_pretrained(
            checkpoint, dtype=torch.bfloat16, quantization_config=q, device_map={"": 0 if DEVICE == "cuda" else DEVICE}
        )
    return AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16).to(DEVICE)


def with_ours(model: Any, quantized: bool, checkpointing: bool) -> Any:
    import llm_adapters as la
    from llm_adapters_train.kbit import prepare_kbit_training

    la.attach(model, {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": LINEAR})
    if quantized:
        prepare_kbit_training(model, gradient_checkpointing=checkpointing)
    return model


def with_peft(model: Any, quantized: bool, checkpointing: bool) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LINEAR, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def run(variant: str, checkpoint: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    library, precision = variant.split("-")
    quantized = precision == "4bit"
    _free()
    if DEVICE == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = load(checkpoint, quantized)
    model = (with_ours if library == "ours" else with_peft)(model, quantized, args.gradient_checkpointing)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    g = torch.Generator(device=DEVICE).manual_seed(0)
    ids = torch.randint(3, LLAMA_1B["vocab_size"], (args.batch, args.seq), generator=g, device=DEVICE)

    first_loss, times = measure(model, optimizer, ids, args)
    seconds = statistics.median(times)
    row = {
        "variant": variant,
        "library": library,
        "precision": precision,
        "seconds_per_step": seconds,
        "tokens_per_second": args.batch * args.seq / seconds,
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if DEVICE == "cuda" else float("nan"),
        "first_loss": first_loss,
        "trainable_parameters": sum(p.numel() for p in trainable),
        "adapter_dtypes": sorted({str(p.dtype).removeprefix("torch.") for p in trainable}),
    }
    del model, optimizer, trainable
    _free()
    return row


def measure(model: Any, optimizer: Any, ids: Any, args: argparse.Namespace) -> tuple[float, list[float]]:
    """The first step's loss and the seconds of each timed step (after the warm-up steps)."""
    import torch

    def step() -> float:
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    first_loss = step()
    for _ in range(max(0, args.warmup - 1)):
        step()
    times = []
    for _ in range(args.steps):
        _sync()
        start = time.perf_counter()
        step()
        _sync()
        times.append(time.perf_counter() - start)
    return first_loss, times


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _free() -> None:
    import torch

    gc.collect()
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'variant':<11} {'s / step':>9} {'tokens / s':>11} {'peak GiB':>9} {'first loss':>11} {'trainable':>11}")
    for r in rows:
        print(
            f"{r['variant']:<11} {r['seconds_per_step']:9.4f} {r['tokens_per_second']:11.0f} {r['peak_gib']:9.2f} "
            f"{r['first_loss']:11.4f} {r['trainable_parameters']:11,}"
        )
    by = {r["variant"]: r for r in rows}
    for precision in ("bf16", "4bit"):
        ours, peft = by.get(f"ours-{precision}"), by.get(f"peft-{precision}")
        if ours and peft:
            print(
                f"{precision}: ours / PEFT  time {ours['seconds_per_step'] / peft['seconds_per_step']:.3f}x, "
                f"peak memory {ours['peak_gib'] / peft['peak_gib']:.3f}x, "
                f"first loss {ours['first_loss']:.4f} vs {peft['first_loss']:.4f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"Comma-separated, from {', '.join(VARIANTS)}.")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10, help="Timed steps per variant.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed steps first (the first gives the loss).")
    parser.add_argument("--layers", type=int, default=LLAMA_1B["num_hidden_layers"], help="Fewer for a quick run.")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="Recompute activations (both).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    require_gpu()
    import importlib.util

    import torch

    missing = [
        f"{v} needs {pkg}"
        for v in variants
        for pkg in (["peft"] if v.startswith("peft") else []) + (["bitsandbytes"] if v.endswith("4bit") else [])
        if importlib.util.find_spec(pkg) is None
    ]
    if missing:
        sys.exit(f"benchmarks/gpu.py: {'; '.join(missing)} (pip install it, or leave those variants out)")
    print(
        f"GPU: {torch.cuda.get_device_name(0) if DEVICE == 'cuda' else DEVICE}; LLaMA {args.layers} layers x "
        f"{LLAMA_1B['hidden_size']}; batch "
        f"{args.batch} x {args.seq}; LoRA r=16 on {', '.join(LINEAR)}; {args.steps} timed steps after "
        f"{args.warmup} warm-up" + ("; gradient checkpointing" if args.gradient_checkpointing else "")
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="llm-adapters-gpu-") as tmp:
        checkpoint = build_checkpoint(Path(tmp), args.layers)
        for variant in variants:
            rows.append(run(variant, checkpoint, args))
            r = rows[-1]
            print(f"  {variant}: {r['seconds_per_step']:.4f} s / step, peak {r['peak_gib']:.2f} GiB", flush=True)
    print_table(rows)
    if args.json is not None:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)}, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
