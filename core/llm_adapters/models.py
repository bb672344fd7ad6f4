"""Loading a causal LM and its tokenizer: a local model directory, an HF hub id, or anything an installed
model source recognises (an embedded model, a GGUF file: see :mod:`llm_adapters.source`).

Every tokenizer comes back with a padding token chosen for it (:func:`ensure_pad_token`), never a fixed id.
transformers is imported only when a model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelLoadError
from .quantize import check_quantizable, check_quantize, is_quantized, quantization_config, require_bitsandbytes

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def resolve_dtype(dtype: str | torch.dtype | None = "auto", device: str | torch.device | None = None) -> torch.dtype:
    """``auto``: float32 on CPU; on CUDA bfloat16 where the GPU supports it, else float16.

    An explicit ``bf16`` on a CUDA device without bfloat16 support is an error.
    """
    import torch

    dev = torch.device(device) if device is not None else _default_device()
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype is None or dtype == "auto":
        if dev.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    elif dtype in DTYPE_NAMES:
        resolved = getattr(torch, DTYPE_NAMES[dtype])
    else:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 (bf16) or float16 (fp16)")
    if resolved == torch.bfloat16 and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ModelLoadError("dtype bfloat16 was requested but this GPU does not support it; use float16")
    return resolved


def _default_device() -> torch.device:
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


#: the names accepted for ``device_map`` besides an explicit map (accelerate's strategies)
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def check_device_map(device_map: str | dict[str, Any] | None, device: str | torch.device | None = None) -> None:
    """Refuse, before anything loads, a ``device_map`` that cannot work: an unknown strategy, one given with
    ``device`` too, a strategy without any visible GPU, or several processes (torchrun), which would each
    spread a copy of the model over the same GPUs."""
    if device_map is None:
        return
    import torch

    if isinstance(device_map, str) and device_map not in DEVICE_MAPS:
        raise ModelLoadError(
            f"unknown device_map {device_map!r}: use {', '.join(DEVICE_MAPS)}, or a dict of module -> device"
        )
    if not isinstance(device_map, (str, dict)):
        raise ModelLoadError(f"device_map must be a string or a dict, got {type(device_map).__name__}")
    if device is not None:
        raise ModelLoadError("pass either device or device_map, not both: device_map places every layer itself")
    if isinstance(device_map, str) and not torch.cuda.is_available():
        raise ModelLoadError(
            f"device_map={device_map!r} spreads the model over GPUs, but no GPU is visible (CUDA is not "
            "available); leave it out to load the model on the CPU"
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        raise ModelLoadError(
            f"device_map={device_map!r} splits one model over the GPUs of one process, but this is one of {world} "
            "processes (torchrun / accelerate); run a single process, or use DDP / FSDP / DeepSpeed without "
            "device_map"
        )


# ---- tokenizer ------------------------------------------------------------------------------------
def ensure_pad_token(tokenizer: Any) -> Any:
    """Give ``tokenizer`` a padding token if it has none: its ``unk`` token when it has one distinct from
    EOS, else its EOS token. Padding is always masked (attention mask, labels -100), so the choice only has to
    be a real token of the vocabulary. Changes the tokenizer in place and returns it."""
    if tokenizer.pad_token is not None:
        return tokenizer
    unk = getattr(tokenizer, "unk_token", None)
    if unk is not None and unk != tokenizer.eos_token:
        tokenizer.pad_token = unk
    elif tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    else:
        raise ModelLoadError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no pad, unk or eos token to pad with"
        )
    return tokenizer


# ---- the entry point ------------------------------------------------------------------------------
def default_model() -> str:
    """The model loaded when none is named: the one of the installed source that declares itself the
    default (``llm-adapters-gguf`` ships the embedded SmolLM2-135M)."""
    from .registry import model_sources

    for source in model_sources().values():
        if source.default and source.default_model:
            return str(source.default_model)
    raise ModelLoadError(
        "no model was named and no installed plugin provides a default model: pass a model (an HF hub id, "
        "a local model directory) or install a plugin with a default model source, e.g. llm-adapters-gguf"
    )


def find_source(name_or_path: str) -> Any:
    """The installed :class:`~llm_adapters.source.ModelSource` that handles ``name_or_path``, or None."""
    from .registry import model_sources

    for source in model_sources().values():
        if source.matches(name_or_path):
            return source
    return None


def local_checkpoint(name_or_path: str) -> str:
    """A directory or hub id that ``from_pretrained`` can load for ``name_or_path``: what a model source
    makes of it, else a local model directory, else (anything that is not a path) a hub id."""
    source = find_source(name_or_path)
    if source is not None:
        return source.checkpoint(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"model directory {str(path)!r} has no config.json; save a model there with save_pretrained"
            )
        return str(path)
    if path.exists():
        raise ModelLoadError(
            f"{str(path)!r} is a file, not a model directory; pass a model directory, a hub id, or a name or "
            "file an installed model source handles (llm-adapters plugins lists them)"
        )
    if name_or_path.startswith((".", "/", "~")) or os.sep + os.sep in name_or_path:
        raise ModelLoadError(f"model directory {name_or_path!r} does not exist")
    return name_or_path


PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth", "tf_model.h5")


def _refuse_pickles(checkpoint: str) -> None:
    """A local model folder must hold safetensors weights: pickled weights are never loaded."""
    d = Path(checkpoint)
    if not d.is_dir() or any(d.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in d.iterdir() if p.name in PICKLES or p.suffix in (".bin", ".pt", ".pth"))
    if pickled:
        raise ModelLoadError(
            f"model directory {str(d)!r} holds pickled weights only ({', '.join(pickled)}); llm-adapters never loads "
            "pickles, which can run code. Convert the weights to safetensors where you trust them "
            "(model.save_pretrained(dir, safe_serialization=True)) and load that folder"
        )


def _damaged_weights(checkpoint: str) -> str | None:
    """The first safetensors file of a local model folder whose header cannot be read, or None."""
    d = Path(checkpoint)
    if not d.is_dir():
        return None
    from safetensors import safe_open

    for f in sorted(d.glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt") as fh:
                fh.keys()
        except Exception:
            return str(f)
    return None


def load_model(
    name_or_path: str | None = None,
    *,
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    attn_implementation: str | None = None,
    quantize: str | None = None,
    device_map: str | dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)``.

    ``name_or_path``: an HF hub id, a local model directory, or a name or file an installed model source
    handles (``None``: :func:`default_model`). ``dtype``: ``auto`` (float32 on CPU, bf16/fp16 on GPU),
    ``float32``, ``bfloat16`` or ``float16``. ``device``: where to put the model (default: the CPU, or the GPU
    of this process's ``LOCAL_RANK`` when CUDA is available). The model comes back in eval mode; the tokenizer
    has a pad token (:func:`ensure_pad_token`) and right padding (generation code switches to left padding).

    ``quantize``: ``"8bit"`` or ``"4bit"`` loads the linear layers quantized by bitsandbytes (4-bit: NF4 with
    double quantization, computing in ``dtype``; see :mod:`llm_adapters.quantize`), on ``device``.
    ``device_map``: ``"auto"`` (or ``"balanced"``, ``"sequential"``, or an explicit map) spreads the model's
    layers over the visible GPUs (accelerate's big-model loading) instead of putting it on one device.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantize = check_quantize(quantize)  # every option is checked before anything is read
    if quantize is not None:
        require_bitsandbytes(quantize)
    check_device_map(device_map, device)
    if name_or_path is None:
        name_or_path = default_model()
    dev = torch.device(device) if device is not None else _default_device()
    if device_map is not None:  # the precision of the GPUs the map uses (a CPU-only explicit map: the CPU's)
        dev = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    torch_dtype = resolve_dtype(dtype, dev)
    source = find_source(name_or_path)
    checkpoint = local_checkpoint(name_or_path)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        extra["revision"] = revision
    try:
        _refuse_pickles(checkpoint)
        if quantize is not None:
            check_quantizable(checkpoint, quantize, **extra)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint, **extra)
        kwargs = dict(extra, dtype=torch_dtype, use_safetensors=True)
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        if quantize is not None:
            kwargs["quantization_config"] = quantization_config(quantize, torch_dtype)
        if device_map is not None:
            kwargs["device_map"] = device_map
        elif quantize is not None:  # bitsandbytes quantizes on the device the weights are loaded to
            kwargs["device_map"] = {"": dev}
        model = AutoModelForCausalLM.from_pretrained(checkpoint, **kwargs)
    except ModelLoadError:
        raise
    except Exception as exc:  # a damaged or missing file, an unreachable hub: one clear message
        damaged = _damaged_weights(checkpoint)
        if damaged:
            raise ModelLoadError(
                f"could not load model {name_or_path!r}: {damaged} is damaged or truncated ({exc}); copy or save "
                "it again"
            ) from None
        where = (
            "a local directory needs config.json and safetensors weights"
            if Path(checkpoint).is_dir()
            else ("is it a hub id, and is the hub reachable?")
        )
        raise ModelLoadError(f"could not load model {name_or_path!r}: {type(exc).__name__}: {exc} ({where})") from None
    ensure_pad_token(tokenizer)
    tokenizer.padding_side = "right"
    if getattr(model.generation_config, "pad_token_id", None) is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if source is not None:
        model.config._name_or_path = source.label(name_or_path)
    if quantize is not None and is_quantized(model) is None:
        raise ModelLoadError(
            f"could not quantize {name_or_path!r} to {quantize}: bitsandbytes replaced none of its layers; load it "
            "without quantize"
        )
    if device_map is None and quantize is None:  # placed by from_pretrained otherwise (and bnb layers do not move)
        model.to(dev)
    model.eval()
    return model, tokenizer
