"""The progress line: job numbers, elapsed time and the estimate of the time left, on a scripted clock."""

from __future__ import annotations

from llm_adapters_reproduce.progress import Job, Progress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 44.6, 60, 725, 3600, 7380)] == [
        "0s",
        "45s",
        "1m00s",
        "12m05s",
        "1h00m",
        "2h03m",
    ]


def test_the_estimate_learns_seconds_per_unit_of_each_kind() -> None:
    clock = Clock()
    jobs = [
        Job("eval", "zero-shot", "evaluating A", units=100),
        Job("train", "lora", "training", units=200),
        Job("eval", "lora", "evaluating A", units=300),
        Job("train", "series", "training", units=50),
        Job("eval", "series", "evaluating A", units=100),
    ]
    lines: list[str] = []
    progress = Progress(jobs, lines.append, clock=clock)

    progress.begin(jobs[0])
    clock.now += 20  # 0.2 s per evaluation unit
    progress.end(jobs[0])
    progress.begin(jobs[1])
    clock.now += 100  # 0.5 s per training unit
    progress.end(jobs[1])
    progress.begin(jobs[2])
    assert (
        lines[0]
        == "[1/5] zero-shot: evaluating A | elapsed 0s | time left: not known before the first job of each kind ends"
    )
    # evaluations 400 units x 0.2 s known, trainings not yet
    assert lines[1] == "[2/5] lora: training | elapsed 20s | more than 1m20s left (plus the trainings, not timed yet)"
    # left: evaluations 300 + 100 units x 0.2 s = 80 s, training 50 units x 0.5 s = 25 s
    assert lines[2] == "[3/5] lora: evaluating A | elapsed 2m00s | about 1m45s left"


def test_jobs_finished_by_an_earlier_run_seed_the_estimate() -> None:
    jobs = [
        Job("train", "lora", "training", units=10, done=True, seconds=30.0),
        Job("train", "b", "training", units=20),
    ]
    lines: list[str] = []
    Progress(jobs, lines.append, clock=Clock()).begin(jobs[1])
    assert lines == ["[2/2] b: training | elapsed 0s | about 1m00s left"]
