"""Adapter directories in HF PEFT's own format, for adapter types that declare ``peft_type``.

Such a directory is what ``peft.PeftModel.save_pretrained`` writes: ``adapter_config.json`` holds PEFT's
config (``peft_type``, ``task_type``, ``base_model_name_or_path``, ``inference_mode`` and the type's own
keys) and ``adapter_model.safetensors`` PEFT's tensor names (``base_model.model.<module path>.<...>``), so
``peft.PeftModel.from_pretrained`` and transformers' ``load_adapter`` read it. The adapter type translates
config and tensors both ways (:meth:`~llm_adapters.adapter.AdapterType.to_peft` / ``from_peft``); this
module knows no adapter type.

What llm-adapters needs beyond PEFT's config (our config, the plugin and core versions, the base model's
fingerprint, the resolved targets) is kept under one extra key of ``adapter_config.json``,
``"llm_adapters"``. We chose the JSON over the safetensors metadata: PEFT 0.21 does not refuse the unknown
key (``PeftConfig.from_peft_type`` drops it, with a warning about unexpected keys), and a checkpoint written
from gathered weights (which copies the config text and writes the file keys) stays readable.

Adapters whose PEFT form loses something we need to go on training (the reparameterisation MLP of prefix
tuning, the prompt encoder of P-tuning: PEFT stores only their output) return those tensors from ``to_peft``
under keys starting ``"llm_adapters."``; they go to a file of their own beside PEFT's,
``llm_adapters_extra.safetensors``, which PEFT never reads, and come back to ``from_peft`` with the rest.

Three layouts are read (see :func:`llm_adapters.files.load_adapter`): the llm-adapters format (top-level
``format_version``); a PEFT directory we wrote (``peft_type`` and our section: our config is attached and
the tensors are mapped back); and a foreign PEFT directory (``peft_type`` only: the installed adapter type
with that ``peft_type`` translates its config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .adapter import AdapterType
from .config import parse_config
from .errors import AdapterFileError, ConfigError, TargetError
from .fileio import atomic_write, write_json
from .registry import adapter_types, get_adapter_type

SECTION = "llm_adapters"
#: the version of our section in a PEFT-format directory (the llm-adapters format itself is version 1)
PEFT_FORMAT_VERSION = 2
PEFT_PREFIX = "base_model.model."
#: tensors of ``to_peft`` under keys with this prefix are ours alone: written beside PEFT's file, not in it
EXTRA_PREFIX = "llm_adapters."
EXTRA_WEIGHTS_NAME = "llm_adapters_extra.safetensors"


#: which distribution reads a PEFT type, for the error when none installed does. Data only: the kernel imports
#: no plugin, and an installed plugin that reads a type is found through its ``peft_type`` whatever it is called.
KNOWN_PROVIDERS = {
    "LORA": "llm-adapters-lora",
    "PREFIX_TUNING": "llm-adapters-prompt",
    "PROMPT_TUNING": "llm-adapters-prompt",
    "P_TUNING": "llm-adapters-prompt",
}


def is_peft_layout(meta: dict[str, Any]) -> bool:
    """Whether a parsed ``adapter_config.json`` is PEFT's (ours or foreign) rather than the llm-adapters one."""
    return "peft_type" in meta and "format_version" not in meta


def reader_for(peft_type: Any, where: Path) -> type[AdapterType]:
    """The installed adapter type that reads PEFT type ``peft_type``; a clear error when none does."""
    types = adapter_types()
    for cls in types.values():
        if cls.peft_type is not None and cls.peft_type == peft_type:
            return cls
    readers = sorted(f"{cls.peft_type} ({name})" for name, cls in types.items() if cls.peft_type)
    provider = KNOWN_PROVIDERS.get(str(peft_type))
    hint = (
        f"; install {provider}, which reads it"
        if provider
        else "; no llm-adapters distribution reads it yet (a third-party adapter plugin may: see "
        "docs/writing-a-plugin.md), or merge it into the base model with PEFT and load that"
    )
    raise AdapterFileError(
        f"{where}: no installed adapter plugin reads PEFT type {peft_type!r} "
        f"(installed types read: {', '.join(readers) or 'none'}){hint}"
    )


def check_peft_meta(cfg_path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """``read_adapter_config`` for a PEFT layout: our section (with ``format_version``, ``adapter_type`` and
    ``config`` checked) and ``"peft"``: the PEFT config; for a foreign directory ``adapter_type`` is the
    installed type that reads it and ``config`` is None (known once translated, on loading)."""
    section = meta.get(SECTION)
    if section is None:
        cls = reader_for(meta["peft_type"], cfg_path)
        return {"adapter_type": cls.name, "config": None, "peft": meta}
    if not isinstance(section, dict):
        raise AdapterFileError(f"{cfg_path}: {SECTION!r} must be a JSON object, got {section!r}")
    for key in ("format_version", "adapter_type", "config"):
        if key not in section:
            raise AdapterFileError(f"{cfg_path}: the key {SECTION}.{key} is missing")
    if not isinstance(section["adapter_type"], str) or not isinstance(section["config"], dict):
        raise AdapterFileError(f"{cfg_path}: {SECTION}.adapter_type must be a string and .config an object")
    fv = section["format_version"]
    if not isinstance(fv, int) or fv > PEFT_FORMAT_VERSION:
        raise AdapterFileError(
            f"{cfg_path}: {SECTION}.format_version {fv!r} is newer than this llm-adapters-core reads (up to "
            f"{PEFT_FORMAT_VERSION}); upgrade llm-adapters-core"
        )
    return {**section, "peft": meta}


# ---- writing ------------------------------------------------------------------------------------
def save_peft(
    model: nn.Module, atype: AdapterType, rec: Any, section: dict[str, Any], tensors: dict[str, torch.Tensor], out: Path
) -> None:
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` in PEFT's format (see the module doc)."""
    sites = [
        {"module": s.module_path, "kind": s.kind, "part": s.part, "role": s.role, "slot": s.slot} for s in rec.sites
    ]
    peft_config, peft_tensors = atype.to_peft(rec.config, sites, tensors, model)
    peft_tensors = {k: v.detach().to("cpu").contiguous() for k, v in peft_tensors.items()}
    extra = {k: peft_tensors.pop(k) for k in [k for k in peft_tensors if k.startswith(EXTRA_PREFIX)]}
    meta = {
        "peft_type": atype.peft_type,
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": section["base_model"].get("name_or_path"),
        "inference_mode": True,
        **peft_config,
        SECTION: {**section, "format_version": PEFT_FORMAT_VERSION},
    }
    if extra:
        atomic_write(out / EXTRA_WEIGHTS_NAME, lambda tmp: save_file(extra, tmp, metadata={"format": "pt"}))
    elif (out / EXTRA_WEIGHTS_NAME).is_file():  # left by an earlier save of ours into this directory
        (out / EXTRA_WEIGHTS_NAME).unlink()
    atomic_write(out / "adapter_model.safetensors", lambda tmp: save_file(peft_tensors, tmp, metadata={"format": "pt"}))
    write_json(out / "adapter_config.json", meta)


# ---- reading ------------------------------------------------------------------------------------
def read_tensors(weights: Path, d: Path) -> dict[str, torch.Tensor]:
    """PEFT's tensor file, with our extra tensors (see the module doc) when the directory holds them."""
    if not weights.is_file():
        raise AdapterFileError(f"{d}: {weights.name} is missing")
    return {**_read(weights), **extra_tensors(d)}


def extra_tensors(d: Path) -> dict[str, torch.Tensor]:
    """Our extra tensors of the directory ``d`` (see the module doc); none when it holds no extra file."""
    extra = d / EXTRA_WEIGHTS_NAME
    if not extra.is_file():
        return {}
    return {k: v for k, v in _read(extra).items() if k.startswith(EXTRA_PREFIX)}


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterFileError(f"{path}: not a readable safetensors file: {exc}") from None


def to_file_keys(
    atype: AdapterType, meta: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module, weights: Path
) -> tuple[Any, dict[str, torch.Tensor]]:
    """``atype.from_peft``, with its ValueErrors turned into errors naming the file. Tensors already under
    our file keys (a checkpoint written from gathered weights) are taken as they are."""
    if SECTION in meta and not any(k.startswith(PEFT_PREFIX) or k in atype.peft_tensor_names for k in tensors):
        return None, tensors
    try:
        return atype.from_peft(meta, tensors, model)
    except (ValueError, KeyError) as exc:
        raise AdapterFileError(f"{weights} does not fit this model: {exc}{_made_for(meta)}") from None


def _made_for(meta: dict[str, Any]) -> str:
    base = meta.get("base_model_name_or_path")
    return f" (PEFT's base_model_name_or_path: {base!r})" if base else ""


def load_peft(
    model: nn.Module, d: Path, meta: dict[str, Any], name: str | None, check_base: bool, checked_config: Any
) -> nn.Module:
    """Attach and load a PEFT-format directory (ours or foreign); on any failure nothing stays attached."""
    from .engine import attach, detach, has_adapters
    from .engine.state import _state
    from .files import _copy_in

    cfg_path, weights = d / "adapter_config.json", d / "adapter_model.safetensors"
    section = meta.get(SECTION)
    if section is not None:
        cfg = checked_config(d, cfg_path, section, check_base, model)
        atype = get_adapter_type(cfg.type)()
    else:
        atype = reader_for(meta["peft_type"], cfg_path)()
    tensors = read_tensors(weights, d)
    translated, tensors = to_file_keys(atype, meta, tensors, model, weights)
    if section is None:
        try:
            cfg = parse_config(translated, lenient=True)
        except ConfigError as exc:
            raise AdapterFileError(f"{cfg_path}: {exc}") from None
    if name is None:
        taken = set(_state(model).records) if has_adapters(model) else set()
        name = "default" if "default" not in taken else d.name
    try:
        attach(model, cfg, name=name)
    except TargetError as exc:
        raise AdapterFileError(f"{cfg_path}: {exc}{_made_for(meta)}") from None
    try:
        _copy_in(model, name, tensors, weights)
    except AdapterFileError as exc:
        detach(model, name)
        raise AdapterFileError(f"{exc}{_made_for(meta)}") from None
    except Exception:
        detach(model, name)
        raise
    return model


def peft_weights_for(model: nn.Module, name: str, d: Path, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """For ``load_adapter_weights``: a PEFT-format directory's tensors under the attached adapter's file keys."""
    import json

    from .engine.state import _state

    try:
        meta = json.loads((d / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return tensors
    if not isinstance(meta, dict) or not is_peft_layout(meta):
        return tensors
    rec = _state(model).records.get(name)
    if rec is None:
        return tensors
    tensors = {**tensors, **extra_tensors(d)}
    return to_file_keys(rec.adapter_type, meta, tensors, model, d / "adapter_model.safetensors")[1]
