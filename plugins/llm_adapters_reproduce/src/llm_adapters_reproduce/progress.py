"""The progress line: which step of the run is starting, the time spent, and an estimate of the time left.

A run is a list of jobs: trainings and evaluation cells. Each has a size in its own unit (a training: the
examples it processes, steps x batch size; a cell: its examples x the generation budget), and the estimate
multiplies the units left by the seconds per unit measured on the jobs finished so far (those of an earlier,
resumed run included). Until a job of a kind has finished, the time of the jobs of that kind is unknown and
the estimate says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Job:
    """One step of the run: ``kind`` is ``"train"`` or ``"eval"`` (of ``task``); ``units`` its size in that
    kind's unit."""

    kind: str
    method: str
    what: str
    units: float
    task: str | None = None
    done: bool = False
    seconds: float | None = None


def format_seconds(seconds: float) -> str:
    """``45s``, ``12m05s``, ``2h03m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Progress:
    """Announces each job as it starts (``[3/19] lora: training ... | elapsed 2m10s | about 14m left``) and
    learns the seconds per unit of each kind from the jobs that finish."""

    def __init__(self, jobs: list[Job], echo: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.jobs = jobs
        self.echo = echo
        self.clock = clock
        self.start = clock()
        self._began: float | None = None

    def rate(self, kind: str) -> float | None:
        """Seconds per unit of ``kind``, from the finished jobs with a measured time."""
        timed = [j for j in self.jobs if j.kind == kind and j.done and j.seconds is not None and j.units > 0]
        units = sum(j.units for j in timed)
        return sum(j.seconds for j in timed) / units if units else None  # type: ignore[misc]

    def estimate(self) -> str:
        """The time left for the jobs not done, in words."""
        left = [j for j in self.jobs if not j.done]
        if not left:
            return "nothing left"
        total = 0.0
        unknown = []
        for kind in ("train", "eval"):
            units = sum(j.units for j in left if j.kind == kind)
            if not units:
                continue
            rate = self.rate(kind)
            if rate is None:
                unknown.append({"train": "trainings", "eval": "evaluations"}[kind])
            else:
                total += units * rate
        if unknown and total == 0:
            return "time left: not known before the first job of each kind ends"
        if unknown:
            return f"more than {format_seconds(total)} left (plus the {' and '.join(unknown)}, not timed yet)"
        return f"about {format_seconds(total)} left"

    def begin(self, job: Job) -> None:
        number = self.jobs.index(job) + 1
        elapsed = format_seconds(self.clock() - self.start)
        self.echo(f"[{number}/{len(self.jobs)}] {job.method}: {job.what} | elapsed {elapsed} | {self.estimate()}")
        self._began = self.clock()

    def end(self, job: Job) -> None:
        job.done = True
        if self._began is not None:
            job.seconds = self.clock() - self._began
        self._began = None
