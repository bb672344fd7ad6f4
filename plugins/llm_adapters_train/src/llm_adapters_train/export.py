"""Exporting a model with its adapters merged into the base weights, as an ordinary transformers checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from llm_adapters.engine import list_adapters, merge
from llm_adapters.errors import AdapterStateError, OutputError
from llm_adapters.fileio import LOCK_NAME, OutputLock, check_output_dir, write_json
from llm_adapters.quantize import is_quantized

MARKER = "llm-adapters-export.json"


def prepare_export_dir(
    output: str | os.PathLike[str], *, overwrite: bool = False, inputs: Sequence[str | os.PathLike[str]] = ()
) -> Path:
    """Check ``output`` before any work: it is a new or empty directory, or (with ``overwrite``) one that a
    previous export wrote, and it is none of ``inputs`` (the adapter directories), nor holds one, nor is the
    current directory. Nothing is deleted here."""
    out = Path(output).expanduser().resolve()
    for source in inputs:
        src = Path(source).expanduser().resolve()
        if out == src or out in src.parents:
            raise OutputError(
                f"export: the output {str(output)!r} is (or holds) the adapter {str(source)!r} being exported; "
                "choose a new directory"
            )
    if out == Path.cwd().resolve() or out in Path.cwd().resolve().parents:
        raise OutputError(
            f"export: the output {str(output)!r} is the current directory (or above it); choose a new one"
        )
    if out.exists() and not out.is_dir():
        raise OutputError(f"export: the output {str(output)!r} is a file; choose a directory")
    present = [p.name for p in out.iterdir() if p.name != LOCK_NAME] if out.is_dir() else []
    if present and not (overwrite and (out / MARKER).is_file()):
        hint = (
            "it was not written by an export, so --overwrite does not apply"
            if overwrite
            else "pass --overwrite to replace a previous export (only the files it wrote are removed)"
        )
        raise OutputError(
            f"export: {str(output)!r} is not empty ({', '.join(sorted(present)[:5])}"
            f"{', ...' if len(present) > 5 else ''}); choose a new directory, or {hint}"
        )
    check_output_dir(out, what="export", create=False)
    return out


def _previous_export(out: Path) -> list[Path]:
    """The files a previous export listed in its marker (only names directly inside ``out``)."""
    try:
        names = json.loads((out / MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [out / n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]


def export_merged(
    model: nn.Module,
    tokenizer: Any,
    output: str | os.PathLike[str],
    *,
    max_shard_size: str = "2GB",
    overwrite: bool = False,
) -> Path:
    """Merge every active adapter into the base weights, remove the adapters, and save the plain model (and
    tokenizer) to ``output`` as safetensors, loadable with transformers alone.

    ``output`` must be a new or empty directory; with ``overwrite=True`` it may hold a previous export, whose
    files (listed in its ``llm-adapters-export.json``) are the only ones replaced. Nothing else is ever
    deleted. The files are written into a temporary directory first and moved in at the end, so an interrupted
    export leaves no half-written checkpoint. Inactive adapters are refused (an export holds only what is
    merged: activate or detach them), and so are adapters that cannot merge (share their directory instead),
    and quantized bases (merge into the full-precision base: the QLoRA convention).
    """
    attached = list_adapters(model)
    inactive = [a.name for a in attached if not a.active]
    if inactive:
        raise AdapterStateError(
            f"cannot export: adapter(s) {', '.join(inactive)} are attached but inactive, and an exported checkpoint "
            "holds only what is merged. Activate them (set_active) to merge them too, or detach them first"
        )
    infos = [a for a in attached if a.active]
    refused = [f"{a.name} ({a.type})" for a in infos if not a.mergeable]
    if refused:
        raise AdapterStateError(
            f"cannot merge {', '.join(refused)} into the base weights: these adapter types are not weight "
            "changes. Share the adapter directory instead (load it with load_adapter on the same base model)"
        )
    kind = is_quantized(model)
    if kind is not None and infos:
        raise AdapterStateError(
            f"cannot export a merged model from this {kind}-quantized base: merging into quantized weights would "
            "quantize the adapter's change away. Load the base in full precision (load_model without quantize) "
            "and load the adapter onto it: adapters trained on a quantized base load there unchanged, and "
            "`llm-adapters export` always does this (the QLoRA convention)"
        )
    out = prepare_export_dir(output, overwrite=overwrite)  # before the model changes
    if infos:
        merge(model, [a.name for a in infos], unload=True)
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out, "export"):
        tmp = Path(tempfile.mkdtemp(prefix=".export.", dir=out))
        try:
            model.save_pretrained(tmp, max_shard_size=max_shard_size)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
            written = sorted(p.name for p in tmp.iterdir())
            for old in _previous_export(out):
                if old.name not in written and old.is_file():
                    old.unlink()  # a shard of the previous export that this one no longer has
            for name in written:
                os.replace(tmp / name, out / name)
            write_json(out / MARKER, {"files": [*written, MARKER]})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def export_peft(model: nn.Module, name: str, output: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write attached adapter ``name`` to ``output`` in PEFT's format (for adapter types that have one), e.g. to
    convert an adapter directory saved in this project's older format. ``output`` follows the rules of
    :func:`prepare_export_dir`; the files are written into a temporary directory first and moved in."""
    from llm_adapters.files import save_adapter
    from llm_adapters.registry import get_adapter_type

    info = next((a for a in list_adapters(model) if a.name == name), None)
    if info is None:
        raise AdapterStateError(f"export: no adapter named {name!r} is attached")
    if getattr(get_adapter_type(info.type), "peft_type", None) is None:
        raise AdapterStateError(
            f"export: adapter type {info.type!r} has no PEFT counterpart, so PEFT-based tools cannot read it; "
            "export it merged into the base weights instead (--format merged)"
        )
    out = prepare_export_dir(output, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out, "export"):
        tmp = Path(tempfile.mkdtemp(prefix=".export.", dir=out))
        try:
            save_adapter(model, tmp, name=name)
            written = sorted(p.name for p in tmp.iterdir())
            for name_ in written:
                os.replace(tmp / name_, out / name_)
            write_json(out / MARKER, {"files": [*written, MARKER]})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
