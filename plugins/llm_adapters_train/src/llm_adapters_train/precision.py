"""The precision a training run computes in, resolved against the device the run trains on.

``dtype: auto`` means: bfloat16 on a GPU that supports it, float16 on one that does not (the Trainer then
scales the loss), float32 on the CPU. The base model is loaded in that dtype; adapter parameters stay float32
whatever it is (the kernel creates them so), and the Trainer runs the forward under autocast in that dtype.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from llm_adapters.models import resolve_dtype


def training_device() -> torch.device:
    """The device this process trains on: its GPU (``LOCAL_RANK`` under torchrun) when CUDA is available,
    else the CPU (what the Trainer chooses too)."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def training_dtype(dtype: str | torch.dtype | None = "auto") -> torch.dtype:
    """``dtype`` (``auto``, ``float32``, ``bfloat16``, ``float16``) resolved for :func:`training_device`."""
    return resolve_dtype(dtype, training_device())


def mixed_precision(dtype: torch.dtype) -> dict[str, bool]:
    """The Trainer's precision flags for a base model in ``dtype``: ``bf16`` (autocast) for bfloat16,
    ``fp16`` (autocast and loss scaling) for float16, neither for float32."""
    return {"bf16": dtype == torch.bfloat16, "fp16": dtype == torch.float16}


def model_precision(model: nn.Module) -> torch.dtype:
    """The dtype a model handed to ``train()`` computes in: a 4-bit layer's compute dtype, else the dtype of
    its input embeddings, else of its first floating-point parameter (quantized weights do not count)."""
    for module in model.modules():
        compute = getattr(module, "compute_dtype", None)
        if isinstance(compute, torch.dtype) and type(module.weight).__name__ == "Params4bit":
            return compute
    embeddings: Any = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    weight = getattr(embeddings, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.is_floating_point():
        return weight.dtype
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
