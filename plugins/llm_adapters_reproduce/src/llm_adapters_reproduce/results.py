"""``results.json``: what a run has finished, rewritten (atomically) after every training and every cell; and
the checks that tie an output folder to the grid that wrote it.

A folder holds one grid's results. Its ``fingerprint`` covers what every cell shares (model, data, tasks,
evaluation settings); each method keeps its own (adapter config and training settings). ``--resume`` continues
a folder only when the shared fingerprint is the same and every method it already holds has the same config;
methods may be added. A folder that is not empty and holds no ``results.json`` is never written into.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from llm_adapters import __version__
from llm_adapters.errors import OutputError
from llm_adapters.fileio import LOCK_NAME, check_output_dir, read_utf8, write_json

from .plan import MethodPlan, Plan

RESULTS = "results.json"
FORMAT = "llm-adapters-reproduce/1"


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys at which two JSON-like values differ (``evaluation.limit``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            out.extend(differences(old.get(key), new.get(key), f"{prefix}{key}."))
        return out
    return [] if old == new else [prefix.rstrip(".") or "(value)"]


def _describe(keys: list[str], old: dict[str, Any], new: dict[str, Any]) -> str:
    def at(d: Any, key: str) -> Any:
        for part in key.split("."):
            d = d.get(part) if isinstance(d, dict) else None
        return d

    shown = [f"{k}: {at(old, k)!r} there, {at(new, k)!r} now" for k in keys[:4]]
    more = f" (and {len(keys) - 4} more)" if len(keys) > 4 else ""
    return "; ".join(shown) + more


def _method_entry(method: MethodPlan) -> dict[str, Any]:
    return {
        "adapter_type": method.adapter_type,
        "options": method.adapter_options,
        "adapter": method.adapter_config,
        "training": method.training,
        "paper": method.paper,
        "fingerprint": method.fingerprint,
    }


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {
        "llm_adapters": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


class Results:
    """The contents of ``results.json`` and the way to update it."""

    def __init__(self, out: Path, data: dict[str, Any]) -> None:
        self.out = out
        self.data = data

    # ---- opening ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, out: str | Path, plan: Plan, *, resume: bool) -> Results:
        """Check ``out`` before any long work and return what it holds (nothing, for a new folder). Raises
        :class:`OutputError` for a file, an unwritable folder, a folder of other content, results written
        without ``--resume``, or another grid's results."""
        folder = Path(out)
        check_output_dir(folder, what="reproduce", create=False)
        content = [p.name for p in folder.iterdir() if p.name != LOCK_NAME] if folder.is_dir() else []
        path = folder / RESULTS
        if not content:
            return cls(folder, cls._fresh(plan))
        if not path.is_file():
            raise OutputError(
                f"reproduce: {str(folder)!r} is not empty and holds no {RESULTS} (it has: "
                f"{', '.join(sorted(content)[:5])}{', ...' if len(content) > 5 else ''}); choose a new or empty "
                "--output folder"
            )
        try:
            data = json.loads(read_utf8(path))
        except (OSError, UnicodeError, ValueError) as exc:
            raise OutputError(
                f"reproduce: {path} cannot be read ({exc}); choose another --output folder, or remove that one if "
                "its results are not needed"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise OutputError(
                f"reproduce: {path} is not a results file of this version ({FORMAT}); choose another --output folder"
            )
        name = data.get("grid", "?")
        if not resume:
            raise OutputError(
                f"reproduce: {str(folder)!r} already holds the results of a run of grid {name!r}; pass --resume to "
                "continue it (finished cells are kept), or choose another --output folder"
            )
        if data.get("fingerprint") != plan.fingerprint:
            keys = differences(data.get("settings", {}).get("shared", {}), plan.settings)
            raise OutputError(
                f"reproduce: {str(folder)!r} holds the results of another grid ({name!r}, with other settings: "
                f"{_describe(keys, data.get('settings', {}).get('shared', {}), plan.settings)}); choose another "
                "--output folder, or run that grid to continue it"
            )
        methods = data.setdefault("methods", {})
        for method in plan.methods:
            held = methods.get(method.name)
            if held is None:
                methods[method.name] = _method_entry(method)
            elif held.get("fingerprint") != method.fingerprint:
                new = _method_entry(method)
                keys = differences({k: held.get(k) for k in ("adapter", "training")}, new)
                keys = [k for k in keys if k.startswith(("adapter.", "training."))]
                raise OutputError(
                    f"reproduce: {str(folder)!r} holds method {method.name!r} trained with another config "
                    f"({_describe(keys, held, new)}); rename the method, or choose another --output folder"
                )
        return cls(folder, data)

    @staticmethod
    def _fresh(plan: Plan) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return {
            "format": FORMAT,
            "grid": plan.grid.name,
            "source": plan.source,
            "description": plan.grid.description,
            "fingerprint": plan.fingerprint,
            "settings": {
                "shared": plan.settings,
                "model": plan.model,
                "zero_shot": plan.grid.zero_shot,
                "train_records": plan.train_records,
                "overlapping_records": len(plan.overlap),
                "left_out": len(plan.overlap) if plan.grid.decontaminate else 0,
                "examples": {t: len(exs) for t, exs in plan.examples.items()},
            },
            "methods": {m.name: _method_entry(m) for m in plan.methods},
            "trainings": {},
            "cells": [],
            "versions": _versions(),
            "created": now,
            "updated": now,
        }

    # ---- reading ------------------------------------------------------------------------------------
    @property
    def cells(self) -> list[dict[str, Any]]:
        return self.data["cells"]

    def cell(self, method: str, task: str) -> dict[str, Any] | None:
        return next((c for c in self.cells if c["method"] == method and c["task"] == task), None)

    def finished(self, method: str, task: str) -> bool:
        """A cell counts as finished when it is recorded and its evaluation records are on disk."""
        cell = self.cell(method, task)
        return cell is not None and (self.out / cell["records"]).is_file()

    def training(self, method: str) -> dict[str, Any] | None:
        return self.data["trainings"].get(method)

    # ---- writing ------------------------------------------------------------------------------------
    def add_cell(self, cell: dict[str, Any]) -> None:
        self.data["cells"] = [c for c in self.cells if (c["method"], c["task"]) != (cell["method"], cell["task"])]
        self.data["cells"].append(cell)
        self.save()

    def set_training(self, method: str, info: dict[str, Any]) -> None:
        self.data["trainings"][method] = info
        self.save()

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / RESULTS, self.data)
