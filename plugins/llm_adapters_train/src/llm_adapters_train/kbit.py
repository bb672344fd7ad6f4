"""Preparing a quantized (8-bit / 4-bit) base model for training adapters on it, the QLoRA way.

bitsandbytes quantizes the linear layers only; what it leaves in half precision (norms, embeddings, the output
layer) is cast to float32, since these are the layers whose half-precision arithmetic makes training
unstable. With gradient checkpointing (on by default for quantized bases), the embeddings' outputs are made to
require gradients so that recomputed segments reach the adapters. The base stays frozen (attaching froze it):
only adapter parameters train.
"""

from __future__ import annotations

import torch
from torch import nn

from llm_adapters.engine.state import HALF
from llm_adapters.quantize import quantized_kind


def prepare_kbit_training(model: nn.Module, *, gradient_checkpointing: bool) -> int:
    """Cast the frozen half-precision parameters that bitsandbytes did not quantize to float32 and (with
    ``gradient_checkpointing``) make the input embeddings' output require gradients. Call it after the adapter
    is attached (which froze the base). Returns the number of values cast. Quantized weights (even when
    bitsandbytes stores them in a float dtype) are never touched; adapter parameters are float32 already."""
    quantized = {id(m.weight) for m in model.modules() if quantized_kind(m) is not None}
    cast = 0
    for p in model.parameters():
        if p.dtype in HALF and not p.requires_grad and id(p) not in quantized:
            p.data = p.data.to(torch.float32)
            cast += p.numel()
    if gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()
    return cast
