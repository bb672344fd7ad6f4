"""What an evaluation produces: per-task and per-run results, and the error of a run with failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_adapters.errors import LLMAdaptersError
from llm_adapters.task import Task


# ---- results --------------------------------------------------------------------------------------
@dataclass
class TaskResult:
    """One task evaluated in one run."""

    task: Task
    records: list[dict[str, Any]]
    method: str
    scoring: str
    seconds: float
    accuracy_by_scoring: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def correct(self) -> int:
        return sum(1 for r in self.records if r["correct"])

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else 0.0


@dataclass
class RunResult:
    """The tasks evaluated with one model + adapter combination; ``error`` says why a failed run stopped
    (its ``tasks`` are those it finished)."""

    label: str
    adapter: dict[str, Any] | None
    tasks: list[TaskResult]
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def average(self) -> float:
        return sum(t.accuracy for t in self.tasks) / len(self.tasks) if self.tasks else 0.0


class EvaluationError(LLMAdaptersError):
    """One or more runs of an evaluation failed (the others finished and were written), or the reports could
    not be written. ``summary`` is what ``summary.json`` holds, when the runs got that far."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = summary
