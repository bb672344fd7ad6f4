"""Adapter-only checkpoints: finding complete ones, and writing one from a gathered (FSDP / DeepSpeed) state dict.

A checkpoint is complete once its ``trainer_state.json`` exists (the Trainer writes it last);
:func:`latest_checkpoint` skips incomplete ones, so a run killed while saving still resumes from the last
complete checkpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from torch import nn

from llm_adapters.engine import adapter_tensors
from llm_adapters.fileio import atomic_write, atomic_write_text, write_json
from llm_adapters.files import CONFIG_NAME, OWN_CONFIG_NAME, WEIGHTS_NAME, config_file

from .errors import TrainingError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
COMPLETE = "checkpoint_complete.json"
#: what llm_adapters.fileio.atomic_write names its temporary files
TEMPORARY_RE = re.compile(
    r"^\.(adapter_model\.safetensors|adapter_config\.json|llm_adapters_config\.json|llm_adapters_extra\.safetensors"
    r"|metrics\.json|train_config\.json|training_args\.json|checkpoint_complete\.json)\.[a-z0-9_]{8}\.tmp$"
)


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete checkpoint (None when it is): the adapter, the Trainer's state (a
    readable JSON object) and the completion marker, which is written last, once everything else is on disk."""
    if not path.is_dir():
        return "not a directory"
    missing = [n for n in (WEIGHTS_NAME, TRAINER_STATE, COMPLETE) if not (path / n).is_file()]
    if config_file(path) is None:
        missing.insert(1, f"{CONFIG_NAME} (or {OWN_CONFIG_NAME})")
    if missing:
        return f"{', '.join(missing)} missing"
    try:
        state = json.loads((path / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{TRAINER_STATE} unreadable ({exc})"
    if not isinstance(state, dict) or "global_step" not in state:
        return f"{TRAINER_STATE} holds no training state"
    return None


def is_complete_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a complete checkpoint (see :func:`checkpoint_problem`)."""
    return checkpoint_problem(path) is None


def mark_complete(path: Path, step: int) -> None:
    """Write the completion marker of checkpoint ``path`` (after the Trainer has written everything else)."""
    write_json(path / COMPLETE, {"global_step": step})


def incomplete_checkpoints(output_dir: str | Path) -> list[tuple[Path, str]]:
    """``(checkpoint, problem)`` for each checkpoint directory in ``output_dir`` that is not complete."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    out = []
    for child in sorted(d.iterdir()):
        if CHECKPOINT_RE.match(child.name) and child.is_dir():
            problem = checkpoint_problem(child)
            if problem:
                out.append((child, problem))
    return out


def remove_orphan_temporaries(output_dir: str | Path) -> list[Path]:
    """Delete the temporary files that an interrupted atomic write of ours left (``.<name>.<random>.tmp``) in
    ``output_dir`` and its checkpoints; nothing else. Returns what was removed."""
    d = Path(output_dir)
    if not d.is_dir():
        return []
    gone = []
    for folder in [d, *(c for c in d.iterdir() if CHECKPOINT_RE.match(c.name) and c.is_dir())]:
        for f in folder.iterdir():
            if f.is_file() and TEMPORARY_RE.match(f.name):
                f.unlink(missing_ok=True)
                gone.append(f)
    return gone


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


def save_gathered_adapter(state_dict: dict[str, Any], keys: dict[str, str], config: tuple[str, str], out: Path) -> None:
    """Write an adapter directory from a gathered full state dict (see :func:`adapter_state_dict_keys`)."""
    from safetensors.torch import save_file

    missing = [sd for sd in keys.values() if sd not in state_dict]
    if missing:
        raise TrainingError(f"the gathered state dict lacks adapter tensors, e.g. {missing[:3]}")
    tensors = {fk: state_dict[sk].detach().to("cpu").contiguous() for fk, sk in keys.items()}
    atomic_write(out / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    name, text = config  # the adapter config's file name and text
    atomic_write_text(out / name, text)
