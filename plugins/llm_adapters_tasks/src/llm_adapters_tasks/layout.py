"""The LLM-Adapters data layout: ``<data dir>/dataset/<Name>/test.json``, each a JSON list of
``{"instruction", "input", "output", "answer"}`` records (``answer`` a string). The data directory is
``--data-dir`` or else the ``LLM_ADAPTERS_DATA`` environment variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from llm_adapters.fileio import read_utf8
from llm_adapters.task import Example, Task, TaskDataError

ENV_DATA = "LLM_ADAPTERS_DATA"
DATA_FILE = "test.json"


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


class ReferenceTask(Task):
    """A task whose test set lives in the LLM-Adapters layout.

    Attributes:
        directory: the data set's folder name under ``<data dir>/dataset/`` (``"gsm8k"``, ``"ARC-Easy"``).
    """

    directory: ClassVar[str] = ""

    @property
    def title(self) -> str:
        return self.display_name or self.directory or self.name

    def spellings(self) -> tuple[str, ...]:
        """The task's names and its data-set folder name (``ARC-Easy``)."""
        return (*super().spellings(), *((self.directory,) if self.directory else ()))

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
            text = read_utf8(path)
        except UnicodeError as exc:
            raise TaskDataError(f"task {self.name!r}: {path} is not UTF-8 text: {exc}") from None
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskDataError(f"task {self.name!r}: {path} is not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise TaskDataError(f"task {self.name!r}: {path} must hold a JSON list of records, got {type(records)}")
        if not records:
            raise TaskDataError(
                f"task {self.name!r}: {path} holds no records (an empty list); put the {self.title} test set "
                'there: a JSON list of {"instruction", "input", "output", "answer"} records'
            )
        if limit is not None:
            records = records[: max(limit, 0)]
            if not records:
                raise TaskDataError(
                    f"task {self.name!r}: limit={limit} leaves no examples of {path}; give a limit of at least 1"
                )
        return [self._example(path, i, rec) for i, rec in enumerate(records)]

    def allowed_answers(self, example: Example) -> list[str] | None:
        """The labels an example's ``answer`` must be one of: the task's ``choices`` for multiple-choice
        tasks, None (anything goes) for open answers."""
        return list(self.choices) if self.choices else None

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
        example = Example(
            instruction=str(rec["instruction"]),
            answer=str(answer),
            input=str(rec.get("input") or ""),
            output=str(rec.get("output") or ""),
            index=index,
            extra=extra,
        )
        allowed = self.allowed_answers(example)
        if allowed is not None:
            wanted = example.answer.strip().lower()
            if not any(label.strip().lower() == wanted for label in allowed):
                raise TaskDataError(
                    f"task {self.name!r}: {path}, record {index}: answer {example.answer!r} is not one of the "
                    f"allowed labels ({', '.join(allowed)}); correct the record's 'answer' to one of them"
                )
        return example
