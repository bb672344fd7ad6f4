"""The demo's arithmetic word problems as an evaluation task (``arithmetic``), so that ``llm-adapters evaluate
--task arithmetic`` scores any model or adapter on the demo's held-out problems."""

from __future__ import annotations

import os
from typing import ClassVar

from llm_adapters.task import Example, Prediction, Task

from .arithmetic import extract_answer, split_problems


class ArithmeticTask(Task):
    """The demo's 100 held-out problems (seed 0, after its 400 training problems); ``--data-dir`` is not
    used: the problems are generated."""

    name = "arithmetic"
    suite = "demo"
    display_name = "Arithmetic"
    description = "Generated one- and two-step arithmetic word problems: the demo's held-out set (100)."
    max_new_tokens: ClassVar[int] = 40
    n_train: ClassVar[int] = 400
    n_heldout: ClassVar[int] = 100

    def load(self, data_dir: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[Example]:
        _, heldout = split_problems(self.n_train, self.n_heldout, seed=0)
        if limit is not None:
            heldout = heldout[: max(limit, 0)]
        return [
            Example(instruction=p["instruction"], answer=p["answer"], output=p["output"], index=i)
            for i, p in enumerate(heldout)
        ]

    def extract_reference(self, generation: str) -> Prediction:
        return extract_answer(generation)

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        return extract_answer(generation)

    def is_correct(self, prediction: Prediction, answer: str, scoring_mode: str = "robust") -> bool:
        return isinstance(prediction, float) and abs(prediction - float(answer)) < 1e-6
