"""Exporting a model with its adapters merged into the base weights, as an ordinary transformers checkpoint."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from llm_adapters.engine import list_adapters, merge
from llm_adapters.errors import AdapterStateError


def export_merged(
    model: nn.Module, tokenizer: Any, output: str | os.PathLike[str], *, max_shard_size: str = "2GB"
) -> Path:
    """Merge every active adapter into the base weights, remove the adapters, and save the plain model (and
    tokenizer) to ``output`` as safetensors. The directory is written under a temporary name and renamed, so
    an interrupted export never leaves a half-written checkpoint. Non-mergeable adapters are refused: their
    adapter directory is already the artifact to share."""
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
    if infos:
        merge(model, [a.name for a in infos], unload=True)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, max_shard_size=max_shard_size)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
