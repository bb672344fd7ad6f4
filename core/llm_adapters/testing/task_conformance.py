"""The task conformance kit: the checks every evaluation task must pass on its own data.

Use it from a task plugin's tests::

    from llm_adapters.testing import TaskConformance
    from my_tasks import CityQuiz

    class TestCityQuiz(TaskConformance):
        task = CityQuiz()          # or: task_name = "cityquiz", for an installed task
        data_dir = "tests/data"    # what load() reads (None for a task that makes its own data)
        limit = None               # load only the first examples

Each check is one test method:

* ``test_load_returns_examples``: ``load`` gives a non-empty list of examples whose ``instruction`` and
  ``answer`` are non-empty strings; ``limit`` keeps the first ``limit`` of them (``limit=1``: the first);
* ``test_prompt_fields_are_two_strings``: ``prompt_fields`` gives ``(instruction, input)`` strings;
* ``test_gold_answer_scores_correct``: for every example, ``render_answer(example)`` (a generation stating the
  gold answer the way the task expects it) scores correct under every scoring mode;
* ``test_wrong_answer_scores_incorrect``: the same generation for ``wrong_answer(example)`` scores incorrect;
* ``test_options_hold_the_gold_label``: for multiple-choice tasks, every example has options with unique
  labels among which is its answer;
* ``test_unknown_scoring_mode_raises``: ``extract`` with an unknown scoring mode raises ``ValueError``;
* ``test_spellings_include_the_name``: ``spellings()`` includes the task's name.

Override ``render_answer`` when the task reads answers in another form (default ``"The answer is {answer}"``)
and ``wrong_answer`` when the default (another label of the example, or a numeric answer plus one) does not
fit. The kit imports no torch.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from ..task import SCORING_MODES, Example, Task

#: how many faulty examples a failure lists
_SHOWN = 5


class TaskConformance:
    """Subclass and set ``task`` (or ``task_name``) and ``data_dir``; see the module docstring."""

    task: ClassVar[Task | type[Task] | None] = None
    task_name: ClassVar[str | None] = None
    data_dir: ClassVar[str | os.PathLike[str] | None] = None
    limit: ClassVar[int | None] = None

    # ---- hooks ------------------------------------------------------------------------------------
    def render_answer(self, example: Example) -> str:
        """A generation that states ``example.answer`` in the form the task reads."""
        return f"The answer is {example.answer}"

    def wrong_answer(self, example: Example, task: Task) -> str | None:
        """An answer that is not ``example.answer`` (None: none can be derived, the example is left out):
        another option's label for multiple-choice tasks, else the numeric answer plus one."""
        if task.multiple_choice:
            others = [o.label for o in task.options(example) if o.label.lower() != example.answer.lower()]
            return others[0] if others else None
        try:
            value = float(example.answer.replace(",", ""))
        except ValueError:
            return None
        if not math.isfinite(value):
            return None
        wrong = value + 1
        return str(int(wrong)) if wrong.is_integer() else repr(wrong)

    # ---- set-up -----------------------------------------------------------------------------------
    @classmethod
    def resolve_task(cls) -> Task:
        """The task under test: ``task`` (an instance, or a class to instantiate), else the installed task
        named ``task_name``."""
        if isinstance(cls.task, Task):
            return cls.task
        if isinstance(cls.task, type) and issubclass(cls.task, Task):
            return cls.task()
        if not cls.task_name:
            pytest.fail(f"{cls.__name__}: set task = <Task> or task_name = '<installed task>'")
        from ..registry import get_task

        return get_task(cls.task_name)

    @pytest.fixture
    def task_under_test(self) -> Task:
        return self.resolve_task()

    @pytest.fixture
    def examples(self, task_under_test: Task) -> list[Example]:
        return task_under_test.load(self.data_dir, limit=self.limit)

    @staticmethod
    def _report(what: str, task: Task, faults: list[str]) -> str:
        shown = "\n".join(faults[:_SHOWN]) + (f"\n... and {len(faults) - _SHOWN} more" if len(faults) > _SHOWN else "")
        return f"task {task.name!r}: {len(faults)} example(s) {what}:\n{shown}"

    # ---- checks -----------------------------------------------------------------------------------
    def test_load_returns_examples(self, task_under_test: Task, examples: list[Example]) -> None:
        task = task_under_test
        assert isinstance(examples, list) and examples, f"task {task.name!r}: load() gave no examples"
        faults = [
            f"#{i}: {ex!r:.120}"
            for i, ex in enumerate(examples)
            if not (isinstance(ex, Example) and _text(ex.instruction) and _text(ex.answer))
        ]
        assert not faults, self._report("without an instruction and an answer string", task, faults)
        if self.limit is not None:
            assert len(examples) <= self.limit, f"load(limit={self.limit}) gave {len(examples)} examples"
        first = task.load(self.data_dir, limit=1)
        assert len(first) == 1 and first[0].instruction == examples[0].instruction, "limit=1 is not the first example"

    def test_prompt_fields_are_two_strings(self, task_under_test: Task, examples: list[Example]) -> None:
        faults = []
        for i, ex in enumerate(examples):
            fields = task_under_test.prompt_fields(ex)
            if not (isinstance(fields, tuple) and len(fields) == 2 and all(isinstance(f, str) for f in fields)):
                faults.append(f"#{i}: prompt_fields gave {fields!r:.120}")
        assert not faults, self._report("with malformed prompt fields", task_under_test, faults)

    def test_gold_answer_scores_correct(self, task_under_test: Task, examples: list[Example]) -> None:
        faults = self._verdicts(task_under_test, examples, expected=True)
        assert not faults, self._report("whose gold answer does not score correct", task_under_test, faults)

    def test_wrong_answer_scores_incorrect(self, task_under_test: Task, examples: list[Example]) -> None:
        faults = self._verdicts(task_under_test, examples, expected=False)
        assert not faults, self._report("whose wrong answer scores correct", task_under_test, faults)

    def _verdicts(self, task: Task, examples: list[Example], *, expected: bool) -> list[str]:
        """Score the gold (``expected=True``) or a wrong answer of every example under every mode; the
        mismatches, described."""
        faults, tried = [], 0
        for i, ex in enumerate(examples):
            answer = ex.answer if expected else self.wrong_answer(ex, task)
            if answer is None:
                continue
            tried += 1
            generation = self.render_answer(replace(ex, answer=answer))
            scored = [task.score(generation, ex, mode) for mode in SCORING_MODES]
            wrong = {s.scoring: s.prediction for s in scored if s.correct is not expected}
            if wrong:
                faults.append(f"#{i}: {generation!r:.80} read as {wrong} (mode: prediction), gold {ex.answer!r}")
        if not tried:
            pytest.skip(f"task {task.name!r}: no wrong answer derivable; override wrong_answer()")
        return faults

    def test_options_hold_the_gold_label(self, task_under_test: Task, examples: list[Example]) -> None:
        task = task_under_test
        if not task.multiple_choice:
            pytest.skip(f"task {task.name!r} has open answers (no choices)")
        faults = []
        for i, ex in enumerate(examples):
            labels = [o.label for o in task.options(ex)]
            if not labels or len(set(labels)) != len(labels) or ex.answer not in labels:
                faults.append(f"#{i}: options {labels}, answer {ex.answer!r}")
        assert not faults, self._report("whose options are empty, repeat a label or miss the answer", task, faults)

    def test_unknown_scoring_mode_raises(self, task_under_test: Task, examples: list[Example]) -> None:
        with pytest.raises(ValueError):
            task_under_test.extract(self.render_answer(examples[0]), "no-such-mode", examples[0])

    def test_spellings_include_the_name(self, task_under_test: Task) -> None:
        spellings: Any = task_under_test.spellings()
        assert task_under_test.name in spellings, f"spellings() {spellings} lacks the name {task_under_test.name!r}"
        assert all(_text(s) for s in spellings), f"spellings() {spellings} holds an empty or non-string entry"


def _text(value: Any) -> bool:
    """Whether ``value`` is a string with something besides white space."""
    return isinstance(value, str) and bool(value.strip())
