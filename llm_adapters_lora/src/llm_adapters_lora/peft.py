"""LoRA in HF PEFT's format (``peft_type`` ``"LORA"``), both ways; plain JSON and tensors, no PEFT import.

PEFT names a module's tensors ``base_model.model.<path>.lora_A.weight`` (r, d_in), ``.lora_B.weight``
(d_out, r) and, with DoRA, ``.lora_magnitude_vector`` (d_out,); its scale is ``lora_alpha / r``
(``/ sqrt(r)`` with ``use_rslora``), its DoRA formula ours (row norms of ``W + s B A``), and with
``fan_in_fan_out`` (GPT-2's ``Conv1D``) only the base weight is stored transposed, not A and B.

Parts of a fused projection (LoRA on the query and value rows of GPT-2's ``c_attn``) become one PEFT LoRA on
the fused module: with k parts of rank r, ``A = [A_1; ...; A_k]`` (k r, d_in) and ``B`` (d_out, k r) holds
``B_i`` at part i's output rows and column block i, zeros elsewhere, so ``B A = sum_i P_i B_i A_i`` exactly.
The rank becomes k r; ``alpha`` becomes ``alpha k`` (``alpha sqrt(k)`` with rsLoRA) so the scale is the same;
both through ``rank_pattern`` / ``alpha_pattern`` keyed by that module's (escaped) path. With DoRA the
magnitude covers every row of the fused weight: rows of parts not adapted get the row norm of the base
weight, which is exactly PEFT's norm there (their rows of ``B A`` are zero), so they stay unchanged.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn

from llm_adapters.engine.targets import iter_base_modules

from .config import LoRAConfig

PREFIX = "base_model.model."
NAMES = {"lora_A": "lora_A.weight", "lora_B": "lora_B.weight", "magnitude": "lora_magnitude_vector"}
FUSED_ROLE = "attn.qkv"
#: PEFT LoraConfig options whose non-default values our LoRA cannot reproduce
UNSUPPORTED = {
    "modules_to_save": None,
    "layers_to_transform": None,
    "layers_pattern": None,
    "layer_replication": None,
    "exclude_modules": None,
    "target_parameters": None,
    "trainable_token_indices": None,
    "lora_bias": False,
    "use_qalora": False,
}


def _groups(sites: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in sites:
        if s["kind"] != "parallel":
            raise ValueError(f"{s['module']}: a LoRA layer of kind {s['kind']!r} has no PEFT form")
        out.setdefault(s["module"], []).append(s)
    return out


def _slot(site: dict[str, Any]) -> str:
    return site.get("slot") or (site["kind"] if site["part"] is None else f"{site['kind']}_{site['part']}")


def _peft_matches(target: str, path: str) -> bool:
    return path == target or path.endswith("." + target)


def _target_modules(model: nn.Module, paths: list[str]) -> list[str]:
    """Module-name suffixes that PEFT resolves to exactly ``paths`` (the leaf names when they do, else the
    paths themselves)."""
    every = [p for p, _ in iter_base_modules(model)]
    leaves = sorted({p.rsplit(".", 1)[-1] for p in paths})
    hits = {p for p in every if any(_peft_matches(t, p) for t in leaves)}
    return leaves if hits == set(paths) else list(paths)


def _alpha(alpha: float) -> float | int:
    return int(alpha) if float(alpha).is_integer() else alpha


@torch.no_grad()
def to_peft(
    config: LoRAConfig, sites: list[dict[str, Any]], tensors: dict[str, torch.Tensor], model: nn.Module
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    groups = _groups(sites)
    out: dict[str, torch.Tensor] = {}
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float | int] = {}
    fan_in_fan_out = False
    r = config.r
    for path, group in groups.items():
        wrapper = model.get_submodule(path)
        fan_in_fan_out = fan_in_fan_out or bool(getattr(wrapper, "transposed", False))
        key = PREFIX + path
        if len(group) == 1 and group[0]["part"] is None:
            for pname, peft_name in NAMES.items():
                t = tensors.get(f"{path}.{_slot(group[0])}.{pname}")
                if t is not None:
                    out[f"{key}.{peft_name}"] = t
            continue
        if config.use_dora and any(s["part"] is None for s in group):
            raise ValueError(
                f"{path}: DoRA on the whole module and on a part of it at once has no PEFT form (one magnitude)"
            )
        k = len(group)
        d_out = int(wrapper.out_features)
        a_parts = [tensors[f"{path}.{_slot(s)}.lora_A"] for s in group]  # each (r, d_in)
        b = torch.zeros(d_out, k * r, dtype=a_parts[0].dtype)  # (d_out, k r)
        weight = wrapper.weight_out_in().detach().to("cpu", torch.float32)  # (d_out, d_in)
        magnitude = torch.linalg.vector_norm(weight, dim=1) if config.use_dora else None  # (d_out,)
        for i, s in enumerate(group):
            idx = torch.arange(d_out) if s["part"] is None else wrapper.part_indices(s["part"]).cpu()
            b[idx, i * r : (i + 1) * r] = tensors[f"{path}.{_slot(s)}.lora_B"].to(b.dtype)
            if magnitude is not None:
                magnitude[idx] = tensors[f"{path}.{_slot(s)}.magnitude"].to(magnitude.dtype)
        out[f"{key}.lora_A.weight"] = torch.cat(a_parts, 0)  # (k r, d_in)
        out[f"{key}.lora_B.weight"] = b
        if magnitude is not None:
            out[f"{key}.lora_magnitude_vector"] = magnitude
        rank_pattern[re.escape(path)] = k * r
        alpha_pattern[re.escape(path)] = _alpha(config.alpha * (math.sqrt(k) if config.use_rslora else k))
    peft_config = {
        "r": r,
        "lora_alpha": _alpha(config.alpha),
        "lora_dropout": config.dropout,
        "use_rslora": config.use_rslora,
        "use_dora": config.use_dora,
        "target_modules": _target_modules(model, list(groups)),
        "fan_in_fan_out": fan_in_fan_out,
        "bias": "none",
        "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
    }
    return peft_config, out


def from_peft(
    peft_config: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module
) -> tuple[LoRAConfig, dict[str, torch.Tensor]]:
    section = peft_config.get("llm_adapters")
    if section is not None:
        return _ours(section, tensors, model)
    return _foreign(peft_config, tensors, model)


def _take(tensors: dict[str, torch.Tensor], path: str, pname: str, used: set[str]) -> torch.Tensor:
    key = f"{PREFIX}{path}.{NAMES[pname]}"
    if key not in tensors:
        raise ValueError(f"the tensor {key} is missing")
    used.add(key)
    return tensors[key]


def _ours(section: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module) -> tuple[LoRAConfig, dict]:
    """Undo :func:`to_peft` for a directory we wrote: its targets say which module held which parts."""
    from llm_adapters.registry import family_for_model_type

    config = LoRAConfig(**{k: v for k, v in section["config"].items() if k in LoRAConfig.model_fields})
    pnames = ["lora_A", "lora_B", *(["magnitude"] if config.use_dora else [])]
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    r = config.r
    for path, group in _groups(section.get("targets") or []).items():
        if len(group) == 1 and group[0]["part"] is None:
            for pname in pnames:
                key = f"{PREFIX}{path}.{NAMES[pname]}"
                if key in tensors:  # a missing one is reported by the core, under our key
                    out[f"{path}.{_slot(group[0])}.{pname}"] = tensors[key]
                    used.add(key)
            continue
        family = family_for_model_type(getattr(getattr(model, "config", None), "model_type", None))
        if family is None:
            raise ValueError(f"{path}: its LoRA sits on parts of a fused projection and no model family is installed")
        a, b = _take(tensors, path, "lora_A", used), _take(tensors, path, "lora_B", used)
        k = len(group)
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != k * r or b.shape[1] != k * r:
            raise ValueError(
                f"{path}: lora_A {tuple(a.shape)} / lora_B {tuple(b.shape)} do not hold {k} part(s) of rank {r}"
            )
        m = _take(tensors, path, "magnitude", used) if config.use_dora else None
        for i, s in enumerate(group):
            idx = (
                torch.arange(b.shape[0])
                if s["part"] is None
                else family.part_indices(FUSED_ROLE, s["part"], model.config)
            )
            if int(idx.max()) >= b.shape[0] or (m is not None and int(idx.max()) >= m.shape[0]):
                raise ValueError(f"{path}: lora_B {tuple(b.shape)} has fewer output rows than this model's module")
            slot = _slot(s)
            out[f"{path}.{slot}.lora_A"] = a[i * r : (i + 1) * r]
            out[f"{path}.{slot}.lora_B"] = b[idx, i * r : (i + 1) * r]
            if m is not None:
                out[f"{path}.{slot}.magnitude"] = m[idx]
    out.update({k: v for k, v in tensors.items() if k not in used})  # the core reports them as unexpected
    return config, out


def _pattern_value(patterns: dict[str, Any], path: str, default: Any) -> Any:
    """PEFT's look-up of ``rank_pattern`` / ``alpha_pattern``: the first key matching the end of the path."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", path):
            return value
    return default


def _foreign(
    peft_config: dict[str, Any], tensors: dict[str, torch.Tensor], model: nn.Module
) -> tuple[LoRAConfig, dict]:
    """A LoRA that PEFT wrote: our LoRA on the same whole modules, with the same r, alpha and options."""
    for option, default in UNSUPPORTED.items():
        if peft_config.get(option, default) not in (default, [], {}):
            raise ValueError(f"PEFT option {option}={peft_config[option]!r} is not supported by llm-adapters' LoRA")
    if peft_config.get("bias", "none") != "none":
        raise ValueError(f"PEFT option bias={peft_config['bias']!r} is not supported (only 'none')")
    targets = peft_config.get("target_modules")
    if targets == "all-linear" or targets == ["all-linear"]:
        raise ValueError("target_modules 'all-linear' is not supported; list the modules")
    every = [p for p, m in iter_base_modules(model) if getattr(getattr(m, "weight", None), "dim", lambda: 0)() == 2]
    if isinstance(targets, str):
        paths = [p for p in every if re.fullmatch(targets, p)]
    elif isinstance(targets, list) and targets:
        paths = [p for p in every if any(_peft_matches(str(t), p) for t in targets)]
    else:
        raise ValueError(f"target_modules must be a non-empty list or a regex, got {targets!r}")
    if not paths:
        raise ValueError(f"target_modules {targets!r} match no linear module of {type(model).__name__}")
    r0, alpha0 = peft_config.get("r", 8), peft_config.get("lora_alpha", 8)
    ranks = {
        p: (
            _pattern_value(peft_config.get("rank_pattern") or {}, p, r0),
            _pattern_value(peft_config.get("alpha_pattern") or {}, p, alpha0),
        )
        for p in paths
    }
    if len(set(ranks.values())) > 1:
        shown = ", ".join(f"{p}: r={rv}, alpha={av}" for p, (rv, av) in list(ranks.items())[:4])
        raise ValueError(
            f"rank_pattern / alpha_pattern give different ranks or alphas per module ({shown}, ...); one "
            "llm-adapters LoRA config has one r and one alpha"
        )
    r, alpha = next(iter(ranks.values()))
    config = LoRAConfig(
        r=r,
        alpha=alpha,
        dropout=peft_config.get("lora_dropout", 0.0),
        use_rslora=bool(peft_config.get("use_rslora", False)),
        use_dora=bool(peft_config.get("use_dora", False)),
        # PEFT's list when every entry names a module here (ours matches suffixes alike), else the exact paths
        target_modules=targets
        if isinstance(targets, list) and all(any(_peft_matches(str(t), p) for p in every) for t in targets)
        else paths,
    )
    out: dict[str, torch.Tensor] = {}
    for key, t in tensors.items():  # tensors of modules PEFT's targets do not name keep their name: unexpected
        ours = _our_key(key)
        out[ours if ours is not None and ours.rsplit(".", 2)[0] in paths else key] = t
    return config, out


def _our_key(peft_key: str) -> str | None:
    """``base_model.model.<path>.lora_A.weight`` -> ``<path>.parallel.lora_A`` (None: not a LoRA tensor)."""
    if not peft_key.startswith(PREFIX):
        return None
    rest = peft_key[len(PREFIX) :]
    for pname, suffix in [*((p, n) for p, n in NAMES.items()), ("magnitude", "lora_magnitude_vector.weight")]:
        if rest.endswith("." + suffix):
            return f"{rest[: -len(suffix) - 1]}.parallel.{pname}"
    return None
