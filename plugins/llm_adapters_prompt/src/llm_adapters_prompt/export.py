"""Exporting the encoder output of a prompt-based adapter as one tensor.

Adapter files (``llm_adapters.save_adapter``) hold the raw trained parameters, the reparameterisation MLP or
prompt encoder included, so that training can resume. For inference elsewhere, the reference system instead
saved one tensor, ``prompt_embeddings``: the encoder output for the virtual tokens ``0 .. nv-1``, with any
projection baked in. :func:`save_prompt_table` writes that tensor (safetensors, never a pickle):

* ``prefix``: ``(nv, L * 2 * KV * d)``, per virtual token the keys and values of every layer, viewed as
  ``(nv, L, 2, KV, d)``;
* ``prompt`` / ``ptuning``: ``(nv, hidden)``, the virtual-token input embeddings.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from llm_adapters.engine.targets import MODEL_LEVEL_ATTR

from .base import PromptAdapter

TENSOR_KEY = "prompt_embeddings"


def _adapter(model: nn.Module, name: str | None) -> PromptAdapter:
    container = getattr(model, MODEL_LEVEL_ATTR, None)
    found = {n: m for n, m in (container.items() if container is not None else []) if isinstance(m, PromptAdapter)}
    if name is None:
        if len(found) != 1:
            listed = ", ".join(found) or "none"
            raise ValueError(f"prompt_table: pass name= (prompt-based adapters attached: {listed})")
        return next(iter(found.values()))
    if name not in found:
        raise ValueError(
            f"prompt_table: no prompt-based adapter named {name!r} (attached: {', '.join(found) or 'none'})"
        )
    return found[name]


@torch.no_grad()
def prompt_table(model: nn.Module, name: str | None = None) -> torch.Tensor:
    """The encoder output of the prompt-based adapter ``name`` (default: the only one), detached, on the CPU."""
    module = _adapter(model, name)
    was_training = module.training
    module.eval()  # no encoder dropout in what is exported
    try:
        return module.prompt_table().detach().to("cpu").contiguous()
    finally:
        module.train(was_training)


def save_prompt_table(model: nn.Module, path: str | os.PathLike[str], name: str | None = None) -> Path:
    """Write :func:`prompt_table` to the safetensors file ``path`` under the key ``prompt_embeddings``."""
    module = _adapter(model, name)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"adapter_type": module.adapter, "num_virtual_tokens": str(module.num_virtual_tokens)}
    save_file({TENSOR_KEY: prompt_table(model, name)}, str(out), metadata=meta)
    return out
