"""The fused adapters' directories: their metadata, their common sites, and one frozen layer per site."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_adapters.errors import AdapterFileError

if TYPE_CHECKING:
    from llm_adapters import AdapterLayer, Site

#: adapter types whose layers the fusion can combine: series (pre / post: h -> h + f(h)) and parallel (a delta
#: added to the module's output)
SUPPORTED = ("series", "parallel")


def _config_path(path: str) -> Path:
    from llm_adapters.files import CONFIG_NAME, config_file

    return config_file(path) or Path(path) / CONFIG_NAME


def read_source(path: str) -> dict[str, Any]:
    """The checked adapter config of one fused adapter directory."""
    from llm_adapters.files import read_adapter_config

    if not Path(path).exists():
        raise AdapterFileError(f"fusion: the adapter directory {path} does not exist")
    meta = read_adapter_config(path)
    atype = meta.get("adapter_type")
    if "peft" in meta or atype not in SUPPORTED:
        raise AdapterFileError(
            f"fusion: {path} holds a {atype or 'PEFT-format'!r} adapter; a fusion combines trained adapters of "
            f"type {' or '.join(repr(t) for t in SUPPORTED)}"
        )
    targets = meta.get("targets")
    if not isinstance(targets, list) or not targets:
        raise AdapterFileError(f"fusion: {_config_path(path)} lists no targets; re-save the adapter")
    for t in targets:
        if t.get("part") is not None:
            raise AdapterFileError(
                f"fusion: {path} sits on part {t['part']!r} of {t['module']}; fusing adapters on parts of fused "
                "projections is not supported"
            )
    return meta


def _sites(meta: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((t["module"], t["kind"]) for t in meta["targets"])


def common_targets(paths: list[str]) -> list[tuple[str, str]]:
    """The ``(module path, kind)`` sites every adapter in ``paths`` sits on, in the first adapter's order;
    an error unless they all sit on the same sites with the same kinds."""
    metas = [read_source(p) for p in paths]
    first = _sites(metas[0])
    for path, meta in zip(paths[1:], metas[1:], strict=True):
        sites = _sites(meta)
        if sites != first:
            only_first = sorted(set(first) - set(sites))
            only_here = sorted(set(sites) - set(first))
            raise AdapterFileError(
                f"fusion: the adapters must sit on the same sites with the same kinds; {path} differs from "
                f"{paths[0]}: only in the first {_show(only_first)}, only in this one {_show(only_here)}"
            )
    return [(t["module"], t["kind"]) for t in metas[0]["targets"]]


def _show(sites: list[tuple[str, str]]) -> str:
    if not sites:
        return "none"
    text = ", ".join(f"{m}:{k}" for m, k in sites[:3])
    return text + (f" (+{len(sites) - 3} more)" if len(sites) > 3 else "")


def frozen_layer(path: str, site: Site) -> AdapterLayer:
    """Adapter ``path``'s layer at ``site``: built by its own adapter type, its weights loaded from its
    safetensors file, every parameter frozen (``requires_grad=False``), in eval mode."""
    import torch
    from safetensors import SafetensorError, safe_open

    from llm_adapters.config import parse_config
    from llm_adapters.errors import ConfigError
    from llm_adapters.files import WEIGHTS_NAME
    from llm_adapters.registry import get_adapter_type

    meta = read_source(path)
    kinds = {t["module"]: t["kind"] for t in meta["targets"]}
    if kinds.get(site.module_path) != site.kind:
        raise AdapterFileError(
            f"fusion: {path} has no {site.kind!r} layer on {site.module_path} (it sits on {_show(_sites(meta))})"
        )
    try:
        cfg = parse_config({**meta["config"], "type": meta["adapter_type"]}, lenient=True)
    except ConfigError as exc:
        raise AdapterFileError(f"fusion: {_config_path(path)}: {exc}") from None
    layer = get_adapter_type(meta["adapter_type"])().create_layer(cfg, site)
    prefix = f"{site.module_path}.{site.kind}."  # the file key of a layer is <module path>.<slot>.<param>
    weights = Path(path) / WEIGHTS_NAME
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            tensors = {k[len(prefix) :]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    except (SafetensorError, OSError, ValueError) as exc:
        raise AdapterFileError(f"fusion: {weights}: not a readable safetensors file: {exc}") from None
    own = layer.state_dict()
    problems = [f"missing {k}" for k in sorted(set(own) - set(tensors))]
    problems += [f"unexpected {k}" for k in sorted(set(tensors) - set(own))]
    problems += [
        f"{k}: file {tuple(tensors[k].shape)} vs layer {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(tensors))
        if tensors[k].shape != own[k].shape
    ]
    if problems:
        raise AdapterFileError(
            f"fusion: {weights} does not fit {site.module_path} of this model: {'; '.join(problems[:4])}"
        )
    with torch.no_grad():
        for k, t in own.items():
            t.copy_(tensors[k].to(device=t.device, dtype=t.dtype))
    layer.requires_grad_(False)
    layer.eval()
    return layer
