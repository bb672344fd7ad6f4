"""The task contract: what a task plugin registers through the ``register_tasks`` hook.

A task is one evaluation data set: where its file lives (``<data dir>/dataset/<directory>/test.json``), how
an example becomes a prompt, how an answer is extracted from a generation under each scoring mode
(``reference`` or ``robust``, see :mod:`llm_adapters.scoring`), how a prediction is judged, and, for
multiple-choice tasks, the options that log-likelihood scoring compares.

The data files are JSON lists of ``{"instruction", "input", "output", "answer"}`` records (the LLM-Adapters
format; ``answer`` is a string). The data directory is ``--data-dir`` or else the ``LLM_ADAPTERS_DATA``
environment variable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError

ENV_DATA = "LLM_ADAPTERS_DATA"
DATA_FILE = "test.json"

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
    details: dict[str, Any] = field(default_factory=dict)


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """``data_dir`` if given, else ``$LLM_ADAPTERS_DATA``; an error saying what to pass when neither is."""
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(ENV_DATA, "").strip()
        if not env:
            raise TaskDataError(
                "no data directory: pass --data-dir DIR (Python: data_dir=...) or set "
                f"{ENV_DATA}=DIR, where DIR holds dataset/<Name>/{DATA_FILE} (the LLM-Adapters layout)"
            )
        data_dir = env
    return Path(data_dir).expanduser()


class Task:
    """Base class of evaluation tasks; subclasses set the class attributes and implement the extraction.

    Attributes:
        name: short lowercase identifier (``"gsm8k"``, ``"arc-easy"``); matched case-insensitively.
        suite: the suite it belongs to (``"math"``, ``"commonsense"``); a suite name selects all its tasks.
        directory: the data set's folder name under ``<data dir>/dataset/`` (``"gsm8k"``, ``"ARC-Easy"``).
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
    directory: ClassVar[str] = ""
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
        return self.display_name or self.directory or self.name

    def data_file(self, data_dir: str | os.PathLike[str] | None = None) -> Path:
        """``<data dir>/dataset/<directory>/test.json``. The folder name is matched case-insensitively when
        the exact spelling is absent (``MAWPS`` for ``mawps``)."""
        root = resolve_data_dir(data_dir) / "dataset"
        exact = root / (self.directory or self.name) / DATA_FILE
        if exact.is_file() or not root.is_dir():
            return exact
        wanted = (self.directory or self.name).lower()
        for child in sorted(root.iterdir()):
            if child.name.lower() == wanted and (child / DATA_FILE).is_file():
                return child / DATA_FILE
        return exact

    def load(self, data_dir: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[Example]:
        """The examples of the test file (the first ``limit`` of them), validated."""
        path = self.data_file(data_dir)
        if not path.is_file():
            raise TaskDataError(
                f"task {self.name!r}: data file not found: {path}. Put the {self.title} test set there: a JSON "
                'list of {"instruction", "input", "output", "answer"} records (the LLM-Adapters format, '
                f"folder dataset/{self.directory or self.name}/), or point --data-dir / {ENV_DATA} at the "
                "folder that holds dataset/"
            )
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TaskDataError(f"task {self.name!r}: {path} is not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise TaskDataError(f"task {self.name!r}: {path} must hold a JSON list of records, got {type(records)}")
        if limit is not None:
            records = records[: max(limit, 0)]
        return [self._example(path, i, rec) for i, rec in enumerate(records)]

    def _example(self, path: Path, index: int, rec: Any) -> Example:
        if not isinstance(rec, dict):
            raise TaskDataError(f"task {self.name!r}: {path}, record {index}: expected an object, got {rec!r:.80}")
        for key in ("instruction", "answer"):
            if key not in rec:
                raise TaskDataError(
                    f"task {self.name!r}: {path}, record {index}: missing field {key!r} "
                    f"(has: {', '.join(sorted(rec)) or 'nothing'})"
                )
        answer = rec["answer"]
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise TaskDataError(
                f"task {self.name!r}: {path}, record {index}: 'answer' must be a string, got {answer!r:.80}"
            )
        known = {"instruction", "input", "output", "answer"}
        extra = {k: v for k, v in rec.items() if k not in known} or None
        return Example(
            instruction=str(rec["instruction"]),
            answer=str(answer),
            input=str(rec.get("input") or ""),
            output=str(rec.get("output") or ""),
            index=index,
            extra=extra,
        )

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
