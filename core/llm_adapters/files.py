"""Adapter files: a config (JSON) + ``adapter_model.safetensors`` in a directory.

The config holds the format version, the adapter type and its config, the plugin that wrote it
(distribution and version), the core's version, the base model (name, model_type, a fingerprint of its
parameter shapes) and the resolved targets. Tensor keys carry the module path, never the adapter's name,
so a file loads under any name. Nothing is ever unpickled. Files are written under a temporary name and
renamed, so an interrupted save never leaves a half-written adapter behind.

Adapter types that declare ``peft_type`` are saved in HF PEFT's own format, ``adapter_config.json``, with the
metadata above under the key ``"llm_adapters"``; directories PEFT wrote load too (see
:mod:`llm_adapters.peft_files`). Types PEFT lacks (series, parallel, third-party ones) write their config as
``llm_adapters_config.json`` instead: PEFT-based tools (PEFT, transformers, vLLM, TGI) look for
``adapter_config.json`` and so refuse such a directory ("can't find adapter_config.json") rather than misread
it. Directories of the first llm-adapters format (``adapter_config.json`` with top-level ``format_version``)
still load. The format is recognised on reading: top-level ``format_version`` (this format), or ``peft_type``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .config import parse_config
from .engine import adapter_tensors, attach, detach, has_adapters
from .engine.state import _state
from .engine.targets import MODEL_LEVEL_ATTR
from .engine.wrapper import AdaptedModule
from .errors import AdapterFileError, ConfigError
from .fileio import atomic_write, write_json
from .quantize import full_precision_shapes
from .registry import adapter_provider, get_registry

FORMAT_VERSION = 1
#: PEFT's config file name: adapter types with a PEFT format, and adapters saved before the own name existed
CONFIG_NAME = "adapter_config.json"
#: the config file name of adapter types PEFT lacks, so that PEFT-based tools do not take them for theirs
OWN_CONFIG_NAME = "llm_adapters_config.json"
CONFIG_NAMES = (CONFIG_NAME, OWN_CONFIG_NAME)
WEIGHTS_NAME = "adapter_model.safetensors"


def config_file(path: str | os.PathLike[str]) -> Path | None:
    """The config file of the adapter directory ``path`` (either name), or None when it holds none."""
    d = Path(path)
    found = [d / n for n in CONFIG_NAMES if (d / n).is_file()]
    return found[0] if found else None


def is_adapter_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory holding an adapter config (PEFT's name or ours)."""
    return config_file(path) is not None


# ---- the base model's identity ------------------------------------------------------------------
def base_parameter_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Shapes of the base model's parameters under their original names (adapters excluded)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def walk(mod: nn.Module, prefix: str) -> None:
        for pname, p in mod.named_parameters(recurse=False):
            shapes[f"{prefix}{pname}"] = tuple(p.shape)
        for cname, child in mod.named_children():
            if cname == MODEL_LEVEL_ATTR:
                continue
            if isinstance(child, AdaptedModule):
                walk(child.base, f"{prefix}{cname}.")
            else:
                walk(child, f"{prefix}{cname}.")

    walk(model, "")
    return full_precision_shapes(model, shapes)  # a quantized base has its full-precision original's identity


def fingerprint(model: nn.Module) -> str:
    """A short digest of the base model's parameter names and shapes (not values)."""
    h = hashlib.sha256()
    for name, shape in sorted(base_parameter_shapes(model).items()):
        h.update(f"{name}:{','.join(map(str, shape))};".encode())
    return h.hexdigest()[:16]


def _base_info(model: nn.Module) -> dict[str, Any]:
    config = getattr(model, "config", None)
    shapes = base_parameter_shapes(model)
    return {
        "name_or_path": getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None),
        "model_type": getattr(config, "model_type", None),
        "fingerprint": fingerprint(model),
        "num_parameters": int(sum(torch.Size(s).numel() for s in shapes.values())),
    }


# ---- writing ------------------------------------------------------------------------------------
def _only_name(model: nn.Module, name: str | None, what: str) -> str:
    state = _state(model)
    if name is not None:
        if name not in state.records:
            raise AdapterFileError(
                f"{what}: no adapter named {name!r} (attached: {', '.join(state.records) or 'none'})"
            )
        return name
    if len(state.records) == 1:
        return next(iter(state.records))
    raise AdapterFileError(f"{what}: several adapters are attached ({', '.join(state.records)}); pass name=")


def save_adapter(model: nn.Module, path: str | os.PathLike[str], name: str | None = None) -> Path:
    """Write adapter ``name`` (default: the only one) to the directory ``path``; returns the directory."""
    name = _only_name(model, name, "save_adapter")
    rec = _state(model).records[name]
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in adapter_tensors(model, name).items()}
    if any(t.device.type == "meta" for t in tensors.values()):
        raise AdapterFileError("save_adapter: the adapter lives on the meta device and has no values to save")
    plugin, version = adapter_provider(rec.config.type)
    section = {
        "format_version": FORMAT_VERSION,
        "adapter_type": rec.config.type,
        "config": rec.config.model_dump(mode="json"),
        "plugin": {"name": plugin, "version": version},
        "core_version": __version__,
        "base_model": _base_info(model),
        "targets": [{"module": s.module_path, "kind": s.kind, "part": s.part, "role": s.role} for s in rec.sites],
    }
    peft_format = rec.adapter_type.peft_type is not None
    name_here = CONFIG_NAME if peft_format else OWN_CONFIG_NAME
    other = out / (OWN_CONFIG_NAME if peft_format else CONFIG_NAME)
    if other.is_file() and not _written_by_us(other):
        raise AdapterFileError(
            f"save_adapter: {out} holds {other.name}, which llm-adapters did not write (another tool's adapter?); "
            f"saving {name_here} beside it would leave two adapters in one directory: choose another directory"
        )
    if peft_format:  # PEFT's own format, our section under one extra key
        from .peft_files import save_peft

        save_peft(model, rec.adapter_type, rec, section, tensors, out)
    else:
        atomic_write(out / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
        write_json(out / OWN_CONFIG_NAME, section)
    if other.is_file():  # an earlier adapter of ours in the other format: this save replaces it
        other.unlink()
    return out


def _written_by_us(cfg_path: Path) -> bool:
    """Whether the config file ``cfg_path`` is one llm-adapters wrote (our format, or PEFT's with our section)."""
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and ("format_version" in meta or "llm_adapters" in meta)


# ---- reading ------------------------------------------------------------------------------------
def read_adapter_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``adapter_config.json`` of an adapter directory, checked for its format."""
    d = Path(path)
    if not d.is_dir():
        raise AdapterFileError(
            f"{d}: not a directory; an adapter is a directory holding {CONFIG_NAME} (or {OWN_CONFIG_NAME}) and "
            f"{WEIGHTS_NAME}"
        )
    if all((d / n).is_file() for n in CONFIG_NAMES):
        raise AdapterFileError(
            f"{d}: holds both {CONFIG_NAME} and {OWN_CONFIG_NAME}, so it is unclear which adapter it is; keep the "
            "one that belongs with its adapter_model.safetensors and move the other away"
        )
    cfg_path = config_file(d)
    if cfg_path is None:
        hint = ""
        if (d / "adapter_model.bin").exists():
            hint = " (adapter_model.bin is a pickle; llm-adapters never loads pickles: convert it to safetensors)"
        raise AdapterFileError(f"{d}: {CONFIG_NAME} (or {OWN_CONFIG_NAME}) is missing{hint}")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise AdapterFileError(
            f"{cfg_path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "an adapter config is JSON written as UTF-8"
        ) from None
    except json.JSONDecodeError as exc:
        raise AdapterFileError(f"{cfg_path}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise AdapterFileError(f"{cfg_path}: expected a JSON object")
    from .peft_files import check_peft_meta, is_peft_layout

    if is_peft_layout(meta):
        return check_peft_meta(cfg_path, meta)
    for key in ("format_version", "adapter_type", "config"):
        if key not in meta:
            raise AdapterFileError(f"{cfg_path}: the key {key!r} is missing; is this an llm-adapters adapter?")
    if not isinstance(meta["adapter_type"], str):
        raise AdapterFileError(f"{cfg_path}: 'adapter_type' must be a string, got {meta['adapter_type']!r}")
    if not isinstance(meta["config"], dict):
        raise AdapterFileError(
            f"{cfg_path}: 'config' must be a JSON object of the adapter's options, got {meta['config']!r}; "
            "re-save the adapter with llm_adapters.save_adapter"
        )
    fv = meta["format_version"]
    if not isinstance(fv, int) or fv > FORMAT_VERSION:
        raise AdapterFileError(
            f"{cfg_path}: format_version {fv!r} is newer than this llm-adapters-core ({__version__}) "
            f"reads (up to {FORMAT_VERSION}); upgrade llm-adapters-core"
        )
    return meta


def load_adapter(
    model: nn.Module,
    path: str | os.PathLike[str],
    name: str | None = None,
    *,
    check_base: bool = True,
) -> nn.Module:
    """Attach the adapter stored in directory ``path`` as ``name`` (default: the directory's name, or
    ``"default"`` if that is free) and load its weights.

    Checks, each with a message saying exactly what does not fit: the file format, the adapter type being
    installed, the plugin version, the base model (fingerprint), missing and unexpected tensor keys, and
    shapes. On any failure nothing is left attached.
    """
    d = Path(path)
    meta = read_adapter_config(d)
    get_registry()  # raises on plugin conflicts before we touch the model
    if "peft" in meta:  # PEFT's format: a directory we wrote, or one PEFT wrote
        from .peft_files import load_peft

        return load_peft(model, d, meta["peft"], name, check_base, _checked_config)
    cfg = _checked_config(d, config_file(d) or d / CONFIG_NAME, meta, check_base, model)
    weights = d / WEIGHTS_NAME
    if not weights.is_file():
        raise AdapterFileError(f"{d}: {WEIGHTS_NAME} is missing")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterFileError(f"{weights}: not a readable safetensors file: {exc}") from None
    if name is None:
        taken = set(_state(model).records) if has_adapters(model) else set()
        name = "default" if "default" not in taken else d.name
    attach(model, cfg, name=name)
    try:
        _copy_in(model, name, tensors, weights)
    except Exception:
        detach(model, name)
        raise
    return model


def load_adapter_weights(model: nn.Module, path: str | os.PathLike[str], name: str = "default") -> None:
    """Copy the tensors of the adapter directory ``path`` into the already attached adapter ``name`` (e.g. a
    training checkpoint into the adapter being trained), checking keys and shapes."""
    weights = Path(path) / WEIGHTS_NAME
    if not weights.is_file():
        raise AdapterFileError(f"{path}: {WEIGHTS_NAME} is missing; not an adapter directory or checkpoint")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterFileError(f"{weights}: not a readable safetensors file: {exc}") from None
    from .peft_files import peft_weights_for

    _copy_in(model, name, peft_weights_for(model, name, Path(path), tensors), weights)


def _checked_config(d: Path, cfg_path: Path, meta: dict[str, Any], check_base: bool, model: nn.Module) -> Any:
    """The parsed config of our metadata ``meta``, after the plugin-version and base-model checks."""
    atype = meta["adapter_type"]
    cfg_dict = dict(meta["config"])
    cfg_dict["type"] = atype
    try:
        cfg = parse_config(cfg_dict, lenient=True)
    except ConfigError as exc:
        raise AdapterFileError(f"{cfg_path}: {exc}") from None
    plugin = meta.get("plugin") or {}
    installed_plugin, installed_version = adapter_provider(atype)
    if plugin.get("version") and installed_version and _major(plugin["version"]) > _major(installed_version):
        warnings.warn(
            f"{d}: written by {plugin.get('name')} {plugin['version']}, newer than the installed "
            f"{installed_plugin} {installed_version}; upgrade it if loading fails",
            stacklevel=3,
        )
    base = meta.get("base_model") or {}
    if check_base and base.get("fingerprint") and base["fingerprint"] != fingerprint(model):
        here = _base_info(model)
        raise AdapterFileError(
            f"{d}: this adapter was trained on a different base model: {base.get('name_or_path')!r} "
            f"(model_type {base.get('model_type')}, {base.get('num_parameters')} parameters, fingerprint "
            f"{base['fingerprint']}); this model is {here['name_or_path']!r} (model_type "
            f"{here['model_type']}, {here['num_parameters']} parameters, fingerprint {here['fingerprint']}). "
            "Load it on its own base model, or pass check_base=False to try anyway"
        )
    return cfg


def _major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


@torch.no_grad()
def _copy_in(model: nn.Module, name: str, tensors: dict[str, torch.Tensor], where: Path) -> None:
    own = adapter_tensors(model, name)
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
    bad = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(tensors))
        if tuple(own[k].shape) != tuple(tensors[k].shape)
    ]
    if bad:
        problems.append(f"{len(bad)} shape mismatch(es): {'; '.join(bad[:3])}")
    for k in sorted(set(own) & set(tensors)):
        t = tensors[k]
        if not t.is_floating_point():
            problems.append(f"{k} is {str(t.dtype).removeprefix('torch.')}, not a floating-point tensor")
        elif not torch.isfinite(t).all():
            problems.append(f"{k} holds non-finite values (nan or inf)")
        if len(problems) > 6:
            break
    if problems:
        raise AdapterFileError(f"{where} does not fit this model: " + "; ".join(problems))
    for k, t in own.items():
        t.copy_(tensors[k].to(device=t.device, dtype=t.dtype))
