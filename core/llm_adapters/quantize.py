"""Quantized base models through bitsandbytes (8-bit LLM.int8() and 4-bit NF4), for QLoRA-style training.

:func:`llm_adapters.load_model` takes ``quantize="8bit"`` or ``"4bit"``: transformers replaces the model's
linear layers by bitsandbytes' ``Linear8bitLt`` / ``Linear4bit`` while loading (4-bit: NF4 with double
quantization, computing in the model's dtype). This module holds what that needs and what the rest of the
kernel asks of a quantized layer:

* :func:`check_quantize`, :func:`require_bitsandbytes`, :func:`check_quantizable`: the checks made before a
  model is loaded, each a clear :class:`~llm_adapters.errors.ModelLoadError`;
* :func:`quantization_config`: the ``BitsAndBytesConfig`` handed to ``from_pretrained``;
* :func:`quantized_kind`, :func:`is_quantized`: recognising quantized layers and models without importing
  bitsandbytes;
* :func:`dequantize_weight`: the float weight a quantized layer stands for (the one place that knows how).

bitsandbytes is an optional dependency (``pip install 'llm-adapters[quant]'``); nothing here imports it
unless a quantized model is loaded or a quantized layer is read.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING, Any

from .errors import ModelLoadError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: the accepted values of ``quantize`` (and of ``--quantize``)
QUANTIZE_CHOICES = ("8bit", "4bit")
#: the oldest bitsandbytes whose layers run (forward and backward) on the CPU as well as on GPUs
MIN_BITSANDBYTES = (0, 45)
INSTALL_HINT = "pip install 'llm-adapters[quant]' (or pip install 'bitsandbytes>=0.45')"
#: the parameter classes bitsandbytes gives quantized weights -> the kind of quantization
_PARAM_KINDS = {"Params4bit": "4bit", "Int8Params": "8bit"}


def check_quantize(quantize: str | None) -> str | None:
    """``quantize`` normalised (``None``, ``"8bit"`` or ``"4bit"``); anything else is a clear error.
    ``"none"`` and ``""`` mean no quantization."""
    if quantize is None:
        return None
    value = str(quantize).strip().lower()
    if value in ("", "none"):
        return None
    if value not in QUANTIZE_CHOICES:
        raise ModelLoadError(
            f"unknown quantize value {quantize!r}: use 8bit or 4bit (bitsandbytes), or leave it out to load the "
            "model in full precision"
        )
    return value


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def require_bitsandbytes(quantize: str) -> None:
    """Raise a clear error unless a recent enough bitsandbytes is installed (checked without importing it)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(f"quantize={quantize!r} needs bitsandbytes, which is not installed: {INSTALL_HINT}")
    try:
        version = importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:  # importable but without metadata: let it try
        return
    if _version(version) < MIN_BITSANDBYTES:
        raise ModelLoadError(
            f"quantize={quantize!r} needs bitsandbytes >= {'.'.join(map(str, MIN_BITSANDBYTES))} (installed: "
            f"{version}): {INSTALL_HINT}"
        )


def quantization_config(quantize: str, compute_dtype: torch.dtype) -> Any:
    """The transformers ``BitsAndBytesConfig`` for ``quantize``: LLM.int8() for ``8bit``; NF4 with double
    quantization computing in ``compute_dtype`` for ``4bit`` (the QLoRA recipe)."""
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def _is_linear(module: nn.Module) -> bool:
    from torch import nn

    from .engine.wrapper import is_conv1d

    return isinstance(module, nn.Linear) or is_conv1d(module)


def quantizable_layers(model: nn.Module) -> list[str]:
    """The paths of the linear layers bitsandbytes would quantize: every ``nn.Linear`` (and transformers'
    ``Conv1D``) except the output embeddings, which transformers keeps in full precision."""
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [path for path, m in model.named_modules() if _is_linear(m) and m is not out and path]


def check_quantizable(checkpoint: str, quantize: str, **extra: Any) -> None:
    """Refuse, before the weights are read, a model in which bitsandbytes would quantize nothing: its
    architecture is built on the meta device (no memory, no weights) and searched for linear layers. A
    checkpoint whose config cannot be read here is left to ``from_pretrained`` to report."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(checkpoint, **extra)
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=extra.get("trust_remote_code", False))
    except Exception:  # an unreadable config is from_pretrained's to report, with its own message
        return
    if not quantizable_layers(skeleton):
        raise ModelLoadError(
            f"cannot quantize {checkpoint!r} to {quantize}: its model type {config.model_type!r} has no linear "
            "layers that bitsandbytes replaces (nn.Linear / Conv1D); load it without quantize"
        )


# ---- quantized layers -----------------------------------------------------------------------------
def quantized_kind(module: nn.Module) -> str | None:
    """``"4bit"`` or ``"8bit"`` when ``module``'s weight is a bitsandbytes quantized parameter (stored as
    packed 4-bit or int8 values), else None. Recognised by class name, without importing bitsandbytes."""
    weight = getattr(module, "weight", None)
    if weight is None:
        return None
    kind = _PARAM_KINDS.get(type(weight).__name__)
    if kind == "8bit" and weight.is_floating_point():  # Linear8bitLt with has_fp16_weights keeps floats
        return None
    return kind


def is_quantized(model: nn.Module) -> str | None:
    """``"4bit"`` / ``"8bit"`` when any layer of ``model`` is quantized by bitsandbytes, else None."""
    for module in model.modules():
        kind = quantized_kind(module)
        if kind is not None:
            return kind
    return None


def dequantize_weight(module: nn.Module, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The float weight, ``(out, in)``, that quantized layer ``module`` computes with (a new tensor, outside
    the autograd graph), in ``dtype`` (default float32).

    4-bit (``Linear4bit``): ``bitsandbytes.functional.dequantize_4bit`` with the weight's quant state.
    8-bit (``Linear8bitLt``): ``int8 * SCB / 127`` row by row, ``SCB`` the per-row absolute maximum (kept on
    the weight until the first forward, on the layer's state afterwards).
    """
    import torch

    weight = module.weight
    kind = quantized_kind(module)
    with torch.no_grad():
        if kind == "4bit":
            import bitsandbytes.functional as bnbf

            if weight.quant_state is None:
                raise ModelLoadError(f"{type(module).__name__}: the 4-bit weight has no quantization state")
            w = bnbf.dequantize_4bit(weight.data, weight.quant_state)
        elif kind == "8bit":
            scb = getattr(weight, "SCB", None)
            if scb is None:
                scb = getattr(getattr(module, "state", None), "SCB", None)
            if scb is None:
                raise ModelLoadError(f"{type(module).__name__}: the 8-bit weight has no row scales (SCB)")
            w = weight.data.float() * (scb.to(weight.device).float()[:, None] / 127.0)
        else:
            w = weight.detach()
        return w.to(dtype or torch.float32)


def full_precision_shapes(model: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """``shapes`` (base parameter name -> shape) with each quantized weight given the shape it has in the
    full-precision model, so that a quantized base and its full-precision original share one identity (an
    adapter trained on one loads onto the other). 4-bit weights are stored packed, and transformers' ``Conv1D``
    layers (GPT-2) become ``(out, in)`` linear layers when quantized: the full-precision shapes come from the
    model's architecture built on the meta device (no memory), once per model. Unquantized models: unchanged."""
    if is_quantized(model) is None:
        return shapes
    full = model.__dict__.get("_llm_adapters_full_shapes")
    if full is None:
        full = _skeleton_shapes(model)
        model.__dict__["_llm_adapters_full_shapes"] = full
    return {name: full.get(name, shape) for name, shape in shapes.items()}


def _skeleton_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    import torch
    from transformers import AutoModelForCausalLM

    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(model.config)
    except Exception:  # an architecture transformers cannot rebuild: fall back to the 4-bit weights' own record
        for path, module in model.named_modules():
            state = getattr(getattr(module, "weight", None), "quant_state", None)
            if quantized_kind(module) == "4bit" and state is not None:
                shapes[f"{path}.weight" if path else "weight"] = tuple(state.shape)
        return shapes
    for path, module in skeleton.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            shapes[f"{path}.{pname}" if path else pname] = tuple(p.shape)
    return shapes
