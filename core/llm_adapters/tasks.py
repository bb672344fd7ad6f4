"""The task contract: what a task plugin registers through the ``register_tasks`` hook.

A task is one evaluation data set: where its file lives, how an example becomes a prompt, how an answer is
extracted from a generation under each scoring mode, and how a prediction is judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass
class Example:
    """One evaluation record in the reference format."""

    instruction: str
    answer: str
    input: str = ""
    output: str = ""
    index: int = 0
    extra: dict[str, Any] | None = None


class Task:
    """Base class of evaluation tasks.

    Attributes:
        name: short lowercase identifier (``"gsm8k"``, ``"arc-easy"``); matched case-insensitively.
        suite: the suite it belongs to (``"math"``, ``"commonsense"``); a suite name selects all its tasks.
        directory: the data set's folder name under the data directory (``"gsm8k"``, ``"ARC-Easy"``).
        choices: for multiple-choice tasks, the label strings (``("true", "false")``); empty otherwise.
    """

    name: ClassVar[str]
    suite: ClassVar[str] = ""
    directory: ClassVar[str] = ""
    choices: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    def extract(self, generation: str, scoring: str) -> str | float | None:
        """The prediction found in ``generation`` under ``scoring`` (``"reference"`` or ``"robust"``)."""
        raise NotImplementedError

    def is_correct(self, prediction: str | float | None, answer: str) -> bool:
        raise NotImplementedError
