"""Resolving placements (roles, module-name suffixes, regexes) to concrete module paths on a model."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

from ..adapter import Placement
from ..errors import TargetError
from ..family import ROLES, ModelFamily
from .wrapper import AdaptedModule

#: attribute under which model-level adapters live on the model (skipped when resolving targets)
MODEL_LEVEL_ATTR = "llm_adapters_model_level"


@dataclass(frozen=True)
class ResolvedSite:
    module_path: str
    kind: str
    part: str | None
    role: str | None


def iter_base_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """``(path, module)`` for every module of the base model, as if no adapter were attached: a wrapped
    module is reported at its original path, and adapter layers are skipped."""

    def walk(mod: nn.Module, prefix: str) -> Iterator[tuple[str, nn.Module]]:
        for name, child in mod.named_children():
            if name == MODEL_LEVEL_ATTR:
                continue
            path = f"{prefix}.{name}" if prefix else name
            if isinstance(child, AdaptedModule):
                yield path, child.base
                yield from walk(child.base, path)
            else:
                yield path, child
                yield from walk(child, path)

    yield from walk(model, "")


def _suffix_match(path: str, suffix: str) -> bool:
    return path == suffix or path.endswith("." + suffix)


def _closest(target: str, paths: list[str]) -> list[str]:
    leaves = sorted({p.rsplit(".", 1)[-1] for p in paths})
    close = difflib.get_close_matches(target.rsplit(".", 1)[-1], leaves, n=5, cutoff=0.5)
    return close or leaves[:12]


def resolve_targets(
    model: nn.Module, placements: list[Placement], family: ModelFamily | None, *, adapter: str
) -> list[ResolvedSite]:
    """Every site the placements name, in order, without duplicates. Each placement must match."""
    modules = list(iter_base_modules(model))
    paths = [p for p, _ in modules]
    found: list[ResolvedSite] = []
    seen: set[tuple[str, str, str | None]] = set()

    def add(path: str, kind: str, part: str | None, role: str | None) -> None:
        key = (path, kind, part)
        if key not in seen:
            seen.add(key)
            found.append(ResolvedSite(path, kind, part, role))

    for pl in placements:
        if pl.regex:
            try:
                rx = re.compile(pl.target)
            except re.error as exc:
                raise TargetError(
                    f"adapter {adapter!r}: target_modules regex {pl.target!r} is invalid: {exc}"
                ) from None
            hits = [p for p in paths if rx.fullmatch(p)]
            if not hits and pl.optional:
                continue
            if not hits:
                raise TargetError(
                    f"adapter {adapter!r}: the regex {pl.target!r} matches no module path of "
                    f"{type(model).__name__} (it must match the whole path, e.g. "
                    f"{paths[min(len(paths) - 1, 5)]!r})"
                )
            for p in hits:
                role = _role_of(family, p)
                add(p, pl.kind_for(role), None, role)
            continue
        # a role, or something shaped like one that is no module-name suffix here (a misspelt role: say so)
        role_like = pl.target.startswith(("attn.", "mlp.", "norm.")) and not any(
            _suffix_match(p, pl.target) for p in paths
        )
        if pl.target in ROLES or role_like:
            if family is None:
                from ..registry import require_family

                require_family(getattr(getattr(model, "config", None), "model_type", None))
            assert family is not None
            if not family.resolves(pl.target) and pl.optional:
                continue
            if not family.resolves(pl.target):
                mapped = ", ".join(sorted(family.roles)) or "none"
                raise TargetError(
                    f"adapter {adapter!r}: model family {family.name!r} has no role {pl.target!r} "
                    f"(roles it maps: {mapped}; all roles: {', '.join(ROLES)})"
                )
            for path, part in family.role_sites(model, pl.target):
                add(path, pl.kind_for(pl.target), part, pl.target)
            continue
        hits = [p for p in paths if _suffix_match(p, pl.target)]
        if not hits and pl.optional:
            continue
        if not hits:
            raise TargetError(
                f"adapter {adapter!r}: target {pl.target!r} matches no module of {type(model).__name__}; "
                f"closest module names: {', '.join(_closest(pl.target, paths))}. Targets are roles "
                f"({', '.join(ROLES)}), module-name suffixes, or one regex string"
            )
        for p in hits:
            role = _role_of(family, p)
            add(p, pl.kind_for(role), None, role)
    return found


def _role_of(family: ModelFamily | None, path: str) -> str | None:
    return family.role_of(path) if family is not None else None
