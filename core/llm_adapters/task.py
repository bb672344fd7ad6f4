"""The task contract: what a task plugin registers through the ``register_tasks`` hook.

A task is one evaluation data set: how its examples are loaded (:meth:`Task.load`), how an example becomes a
prompt, how an answer is extracted from a generation under each scoring mode (``reference``: the rules of
the system a task comes from; ``robust``: rules that read what a model actually wrote), how a prediction is
judged, and, for multiple-choice tasks, the options that log-likelihood scoring compares. Where the data
lives and how it is laid out is the task plugin's business.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import ConfigError

#: The scoring modes every task implements: ``reference`` (the rules of the system the task comes from,
#: flaws included, for comparable numbers) and ``robust`` (rules that read what a model actually wrote).
SCORING_MODES: tuple[str, ...] = ("reference", "robust")

#: What a task's extraction returns: a number, a label or letter, or None when the text holds no answer.
Prediction = float | str | None


class TaskDataError(ConfigError):
    """A task's data file is missing or not in the expected format."""


@dataclass
class Example:
    """One evaluation record in the reference format."""

    instruction: str
    answer: str
    input: str = ""
    output: str = ""
    index: int = 0
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class Option:
    """One answer option of a multiple-choice example: its label (``"answer2"``, ``"B"``) and its text."""

    label: str
    text: str


@dataclass
class Scored:
    """A prediction and its verdict under one scoring mode."""

    prediction: Prediction
    correct: bool
    scoring: str


class Task:
    """Base class of evaluation tasks; subclasses set the class attributes and implement the extraction.

    Attributes:
        name: short lowercase identifier (``"gsm8k"``, ``"arc-easy"``); matched case-insensitively.
        suite: the suite it belongs to (``"math"``, ``"commonsense"``); a suite name selects all its tasks.
        display_name: the column title in result tables (``"GSM8K"``).
        aliases: other accepted spellings (``"obqa"``); matched case-insensitively like ``name``.
        choices: for multiple-choice tasks, the label strings common to every example (``("true",
            "false")``); per-example options come from :meth:`options`. Empty for open answers.
        metric: what the task reports (``"accuracy"``: the fraction of examples judged correct).
        max_new_tokens: the generation budget (the reference uses 256 for math and 32 for commonsense).
        reference_skip_special_tokens: whether the reference scripts decoded this task's generations with
            special tokens removed (commonsense) or kept (math).
    """

    name: ClassVar[str]
    suite: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    choices: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    metric: ClassVar[str] = "accuracy"
    max_new_tokens: ClassVar[int] = 256
    reference_skip_special_tokens: ClassVar[bool] = False

    # ---- data -------------------------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.display_name or self.name

    def spellings(self) -> tuple[str, ...]:
        """Every name a user may select this task by (matched case-insensitively): its name, aliases and
        display name."""
        return tuple(s for s in (self.name, *self.aliases, self.display_name) if s)

    def load(self, data_dir: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[Example]:
        """The task's examples (the first ``limit`` of them), validated. ``data_dir`` is where the user keeps
        data sets (``--data-dir``); a task that makes its own data may ignore it. Raise :class:`TaskDataError`
        naming the file and the fix when the data is missing or malformed."""
        raise NotImplementedError(f"task {self.name!r} does not implement load()")

    # ---- prompting --------------------------------------------------------------------------------
    def prompt_fields(self, example: Example) -> tuple[str, str]:
        """The ``(instruction, input)`` pair given to the prompt template."""
        return example.instruction, example.input

    # ---- multiple choice --------------------------------------------------------------------------
    @property
    def multiple_choice(self) -> bool:
        return bool(self.choices)

    def options(self, example: Example) -> list[Option]:
        """The example's answer options (label and text); empty for open-answer tasks."""
        return [Option(c, c) for c in self.choices]

    def continuation(self, option: Option, target: str = "label") -> str:
        """The text whose likelihood stands for ``option`` in log-likelihood scoring: with ``target="label"``
        the answer as the training data states it (default: the label), with ``"text"`` the option's text."""
        if target == "text":
            return option.text
        return option.label

    # ---- extraction and judging -------------------------------------------------------------------
    def extract(self, generation: str, scoring: str, example: Example | None = None) -> Prediction:
        """The prediction found in ``generation`` under ``scoring`` (``"reference"`` or ``"robust"``).
        ``example`` lets robust rules look at the options; the reference rules never do."""
        if scoring == "reference":
            return self.extract_reference(generation)
        if scoring == "robust":
            return self.extract_robust(generation, example)
        raise ValueError(f"unknown scoring mode {scoring!r}; choose one of: reference, robust")

    def extract_reference(self, generation: str) -> Prediction:
        raise NotImplementedError

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        raise NotImplementedError

    def is_correct(self, prediction: Prediction, answer: str, scoring_mode: str = "robust") -> bool:
        """Whether ``prediction`` answers ``answer`` under ``scoring_mode``."""
        raise NotImplementedError

    def score(self, generation: str, example: Example, scoring: str) -> Scored:
        """Extract and judge in one step."""
        prediction = self.extract(generation, scoring, example)
        return Scored(prediction, bool(self.is_correct(prediction, example.answer, scoring)), scoring)
