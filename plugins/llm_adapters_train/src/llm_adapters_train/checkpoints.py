"""Adapter-only checkpoints: finding complete ones, and writing one from a gathered (FSDP / DeepSpeed) state dict.

A checkpoint is complete once its ``trainer_state.json`` exists (the Trainer writes it last);
:func:`latest_checkpoint` skips incomplete ones, so a run killed while saving still resumes from the last
complete checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import nn

from llm_adapters.engine import adapter_tensors
from llm_adapters.fileio import atomic_write, atomic_write_text
from llm_adapters.files import CONFIG_NAME, WEIGHTS_NAME

from .errors import TrainingError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"


def is_complete_checkpoint(path: Path) -> bool:
    """A checkpoint directory holding the adapter and the Trainer's state (written last)."""
    return all((path / name).is_file() for name in (WEIGHTS_NAME, CONFIG_NAME, TRAINER_STATE))


def checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest (lowest step) first."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    found = []
    for child in d.iterdir():
        m = CHECKPOINT_RE.match(child.name)
        if m and child.is_dir() and is_complete_checkpoint(child):
            found.append((int(m.group(1)), child))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    found = checkpoints(output_dir)
    return found[-1] if found else None


def adapter_state_dict_keys(model: nn.Module, name: str = "default") -> dict[str, str]:
    """For each tensor of adapter ``name``: its file key -> its key in ``model.state_dict()``."""
    by_storage = {
        (t.data_ptr(), tuple(t.shape)): key for key, t in model.state_dict(keep_vars=True).items() if t.numel()
    }
    out = {}
    for file_key, t in adapter_tensors(model, name).items():
        sd_key = by_storage.get((t.data_ptr(), tuple(t.shape)))
        if sd_key is None:
            raise TrainingError(f"adapter tensor {file_key} is not in the model's state dict")
        out[file_key] = sd_key
    return out


def save_gathered_adapter(state_dict: dict[str, Any], keys: dict[str, str], config_text: str, out: Path) -> None:
    """Write an adapter directory from a gathered full state dict (see :func:`adapter_state_dict_keys`)."""
    from safetensors.torch import save_file

    missing = [sd for sd in keys.values() if sd not in state_dict]
    if missing:
        raise TrainingError(f"the gathered state dict lacks adapter tensors, e.g. {missing[:3]}")
    tensors = {fk: state_dict[sk].detach().to("cpu").contiguous() for fk, sk in keys.items()}
    atomic_write(out / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write_text(out / CONFIG_NAME, config_text)
