"""From a grid to a checked plan: everything that can be wrong is found here, before a model loads.

:func:`build_plan` applies the command-line overrides (model, methods, tasks, data folder), then checks each
method's adapter config with its adapter type's config class, the training settings against ``TrainConfig``
and the evaluation settings against ``EvalConfig``, resolves the tasks through the registry, loads their test
sets and the training data (a missing file is an error naming the path), leaves out the training records that
repeat an evaluated problem (``decontaminate``), and computes the fingerprints that tie an output folder to the
grid that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llm_adapters.config import format_validation_error, parse_config
from llm_adapters.errors import ConfigError, LLMAdaptersError
from llm_adapters.task import Example, Task, TaskDataError

from .grid import Grid, MethodSpec, parse_grid
from .paper import ROW_OF_TYPE

#: where the project keeps the reference data, beside a checkout (used when nothing else names a folder)
SHARED_DATA = Path("..") / "shared" / "data" / "llm-adapters"

#: training fields the grid may not set, and what sets them instead
RUN_OWNED_TRAINING = {
    "model": "the grid's model (or --model)",
    "dtype": "the grid's dtype",
    "adapter": "each method's adapter",
    "adapter_options": "each method's adapter",
    "data": "the grid's train_data",
    "output": "the run (one folder per method under --output)",
    "resume": "--resume",
    "overwrite": "the run (a finished training is kept, never overwritten)",
    "progress": "--progress / --no-progress",
}
#: evaluation fields the grid may not set, and what sets them instead
RUN_OWNED_EVALUATION = {
    "model": "the grid's model (or --model)",
    "dtype": "the grid's dtype",
    "adapter_paths": "the run (each method's trained adapter)",
    "include_base": "the grid's zero_shot",
    "tasks": "the grid's tasks (or --task)",
    "data_dir": "the grid's data_dir (or --data-dir)",
    "output": "the run (one folder per method under --output)",
    "progress": "--progress / --no-progress",
}


@dataclass
class MethodPlan:
    """One method, checked: its adapter config (every field, defaults filled in), its training settings
    (the grid's, then its own) and the fingerprint of both."""

    name: str
    adapter_type: str
    adapter_options: dict[str, Any]
    adapter_config: dict[str, Any]
    training: dict[str, Any]
    paper: str | None
    fingerprint: str


@dataclass
class Plan:
    """A grid made concrete: resolved paths, tasks with their examples, checked configs, fingerprints."""

    grid: Grid
    source: str
    model: str | None
    data_dir: Path
    train_data: Path
    train_records: int
    overlap: list[int]
    tasks: list[Task]
    examples: dict[str, list[Example]]
    evaluation: dict[str, Any]
    methods: list[MethodPlan]
    settings: dict[str, Any]
    fingerprint: str
    notes: list[str] = field(default_factory=list)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def eval_config(self, output: str | Path, progress: bool = False) -> Any:
        """The ``EvalConfig`` every cell is evaluated with (``output``: the method's folder)."""
        from llm_adapters_eval.config import EvalConfig

        return EvalConfig.model_validate(
            {
                **{k: v for k, v in self.evaluation.items() if k != "resolved"},
                "model": self.model,
                "dtype": self.grid.dtype,
                "tasks": self.task_names,
                "data_dir": str(self.data_dir),
                "output": str(output),
                "progress": progress,
            }
        )


# ---- helpers ------------------------------------------------------------------------------------------
def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """A hash of a file's bytes (of a folder's files, by name and bytes)."""
    h = hashlib.sha256()
    for item in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if item.is_file():
            h.update(str(item.relative_to(path)).encode() if path.is_dir() else b"")
            with item.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
    return h.hexdigest()[:16]


def normalize(text: str) -> str:
    """How two problems are compared for ``decontaminate``: lower case, white space collapsed."""
    return " ".join(text.lower().split())


def _owned(section: dict[str, Any], owned: dict[str, str], where: str) -> None:
    for key in section:
        if key in owned:
            raise ConfigError(f"{where}: {key!r} cannot be set here; it is set by {owned[key]}; remove it")


def resolve_data_dir(explicit: str | None, grid: Grid, where: str) -> Path:
    """``--data-dir``, else the grid's ``data_dir``, else ``$LLM_ADAPTERS_DATA``, else the project's shared data
    folder beside the checkout; an error naming what to pass when none is there."""
    from llm_adapters_tasks.layout import ENV_DATA

    candidates = [
        (explicit, "--data-dir"),
        (grid.data_dir, f"{where}: data_dir"),
        (os.environ.get(ENV_DATA, "").strip() or None, f"${ENV_DATA}"),
    ]
    for value, origin in candidates:
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise TaskDataError(
                    f"the data folder {str(path)!r} (from {origin}) does not exist; point --data-dir at a folder in "
                    "the LLM-Adapters layout (dataset/<Name>/test.json, ft-training_set/<name>.json)"
                )
            return path.resolve()
    if SHARED_DATA.is_dir():
        return SHARED_DATA.resolve()
    raise TaskDataError(
        f"no data folder: pass --data-dir DIR, set data_dir in the grid or {ENV_DATA}=DIR, where DIR holds "
        "dataset/<Name>/test.json and ft-training_set/<name>.json (the LLM-Adapters layout)"
    )


def _select_methods(grid: Grid, names: Sequence[str] | None, where: str) -> list[MethodSpec]:
    if not names:
        return list(grid.methods)
    wanted = [n.strip() for item in names for n in str(item).split(",") if n.strip()]
    known = {m.name: m for m in grid.methods}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(
            f"--methods: {', '.join(repr(n) for n in unknown)} not in {where}; its methods are: {', '.join(known)}"
        )
    return [m for m in grid.methods if m.name in wanted]


def _check_adapter(method: MethodSpec, where: str) -> dict[str, Any]:
    try:
        config = parse_config(dict(method.adapter))
    except LLMAdaptersError as exc:
        raise ConfigError(f"{where}: method {method.name!r}: {exc}") from None
    return config.model_dump(mode="json")


def _check_training(grid: Grid, method: MethodSpec, train_data: Path, where: str) -> dict[str, Any]:
    from llm_adapters_train.run_config import TrainConfig

    _owned(grid.training, RUN_OWNED_TRAINING, f"{where}: training")
    _owned(method.training, RUN_OWNED_TRAINING, f"{where}: method {method.name!r}: training")
    adapter = dict(method.adapter)
    kind = adapter.pop("type")
    merged = {"report_to": "none", **grid.training, **method.training}
    try:
        config = TrainConfig.model_validate(
            {**merged, "adapter": kind, "adapter_options": adapter, "data": str(train_data), "output": "-"}
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{where}: method {method.name!r}: training")) from None
    dumped = config.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if k not in RUN_OWNED_TRAINING}


def _check_evaluation(grid: Grid, tasks: list[Task], data_dir: Path, where: str) -> dict[str, Any]:
    from llm_adapters_eval.config import EvalConfig

    _owned(grid.evaluation, RUN_OWNED_EVALUATION, f"{where}: evaluation")
    try:
        config = EvalConfig.model_validate(
            {**grid.evaluation, "tasks": [t.name for t in tasks], "data_dir": str(data_dir), "output": "-"}
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{where}: evaluation")) from None
    from llm_adapters_eval.per_task import resolve_template

    resolve_template(config.template_name, None)  # a misspelt template fails now
    dumped = config.model_dump(mode="json")
    settings = {k: v for k, v in dumped.items() if k not in RUN_OWNED_EVALUATION}
    # what the protocol implies, spelt out for the reports
    settings["resolved"] = {"template": config.template_name, "scoring": config.scoring_mode}
    return settings


def _tasks(grid: Grid, where: str) -> list[Task]:
    from llm_adapters_eval.runner import select_tasks

    try:
        return select_tasks(grid.tasks)
    except LLMAdaptersError as exc:
        raise ConfigError(f"{where}: tasks: {exc}") from None


def _train_data(grid: Grid, data_dir: Path, where: str) -> Path:
    path = Path(grid.train_data).expanduser()
    if not path.is_absolute():
        path = data_dir / path
    if not path.exists():
        raise TaskDataError(
            f"training data not found: {path} ({where}: train_data {grid.train_data!r}, in the data folder "
            f"{data_dir}); put the file there (ft-training_set/<name>.json in the LLM-Adapters layout), or point "
            "--data-dir at a folder that has it"
        )
    return path


def training_records(train_data: Path) -> Any:
    """The training records, checked (a ``datasets.Dataset``; records with nothing in them dropped)."""
    from llm_adapters_train.data import load_records

    return load_records(train_data)


def _overlap(train_data: Path, examples: dict[str, list[Example]]) -> tuple[int, list[int]]:
    """The number of training records and the indexes (among :func:`training_records`) of those that repeat
    an evaluated problem."""
    records = training_records(train_data)
    evaluated = {normalize(f"{ex.instruction} {ex.input}") for exs in examples.values() for ex in exs}
    keys = [normalize(f"{i} {x or ''}") for i, x in zip(records["instruction"], records["input"], strict=True)]
    return len(keys), [n for n, key in enumerate(keys) if key in evaluated]


# ---- the plan -------------------------------------------------------------------------------------------
def build_plan(
    grid: Grid,
    *,
    source: str,
    model: str | None = None,
    methods: Sequence[str] | None = None,
    tasks: str | Sequence[str] | None = None,
    data_dir: str | None = None,
) -> Plan:
    """Check ``grid`` (with the overrides given) against the installed plugins and the data; raises a
    :class:`~llm_adapters.errors.ConfigError` (or :class:`TaskDataError`) naming the problem and its place."""
    updates: dict[str, Any] = {}
    if model:
        updates["model"] = model
    if tasks:
        updates["tasks"] = tasks
    if updates:
        grid = parse_grid({**grid.model_dump(), **updates}, source)
    chosen = _select_methods(grid, methods, source)

    adapter_configs = {m.name: _check_adapter(m, source) for m in chosen}  # first: the most likely typo
    task_list = _tasks(grid, source)
    root = resolve_data_dir(data_dir, grid, source)
    evaluation = _check_evaluation(grid, task_list, root, source)
    train_data = _train_data(grid, root, source)
    method_plans = []
    for method in chosen:
        adapter_config = adapter_configs[method.name]
        training = _check_training(grid, method, train_data, source)
        kind = method.adapter["type"]
        options = {k: v for k, v in method.adapter.items() if k != "type"}
        method_plans.append(
            MethodPlan(
                name=method.name,
                adapter_type=kind,
                adapter_options=options,
                adapter_config=adapter_config,
                training=training,
                paper=method.paper if method.paper is not None else ROW_OF_TYPE.get(kind),
                fingerprint=digest({"adapter": adapter_config, "training": training}),
            )
        )

    limit = evaluation.get("limit")
    examples = {t.name: t.load(root, limit) for t in task_list}  # a missing test set fails here
    n_records, overlap = _overlap(train_data, examples)
    notes = []
    if overlap:
        what = "left out" if grid.decontaminate else "kept (decontaminate: false)"
        notes.append(f"{len(overlap)} of the {n_records} training records repeat an evaluated problem: {what}")
    settings = {
        "model": grid.model,
        "dtype": grid.dtype,
        "data_dir": str(root),
        "train_data": str(train_data),
        "train_data_sha256": file_digest(train_data),
        "decontaminate": grid.decontaminate,
        "tasks": [t.name for t in task_list],
        "evaluation": evaluation,
    }
    return Plan(
        grid=grid,
        source=source,
        model=grid.model,
        data_dir=root,
        train_data=train_data,
        train_records=n_records,
        overlap=overlap,
        tasks=task_list,
        examples=examples,
        evaluation=evaluation,
        methods=method_plans,
        settings=settings,
        fingerprint=digest(settings),
        notes=notes,
    )
