"""The task conformance kit on every task of the tasks plugin and on the demo's ``arithmetic`` task.

Tasks with hand-written files in ``tests/assets/tasks`` read those; the others read the published sets in the
shared data folder (``tests/shared_data.py``) and skip, saying where they looked, when it is absent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_adapters.task import Task
from llm_adapters.testing import TaskConformance
from llm_adapters_demo.task import ArithmeticTask
from llm_adapters_tasks import commonsense_tasks, math_tasks

from .conftest import ASSETS, SHARED_DATA, shared_or_skip


class _OnAssets(TaskConformance):
    data_dir = ASSETS


class _OnSharedData(TaskConformance):
    data_dir = SHARED_DATA

    @pytest.fixture(autouse=True)
    def _shared_data(self) -> Iterator[None]:
        shared_or_skip()
        yield


class TestSVAMP(_OnAssets):
    task_name = "svamp"


class TestMAWPS(_OnAssets):
    task_name = "mawps"


class TestHellaSwag(_OnAssets):
    task_name = "hellaswag"


class TestWinoGrande(_OnAssets):
    task_name = "winogrande"


class TestOpenBookQA(_OnAssets):
    task_name = "openbookqa"


class TestAddSub(_OnSharedData):
    task_name = "addsub"


class TestMultiArith(_OnSharedData):
    task_name = "multiarith"


class TestSingleEq(_OnSharedData):
    task_name = "singleeq"


class TestGSM8K(_OnSharedData):
    task_name = "gsm8k"


class TestAQuA(_OnSharedData):
    task_name = "aqua"


class TestMathQA(_OnSharedData):
    task_name = "mathqa"


class TestBoolQ(_OnSharedData):
    task_name = "boolq"


class TestPIQA(_OnSharedData):
    task_name = "piqa"


class TestSIQA(_OnSharedData):
    task_name = "siqa"


class TestARCEasy(_OnSharedData):
    task_name = "arc-easy"


class TestARCChallenge(_OnSharedData):
    task_name = "arc-challenge"


class TestArithmetic(TaskConformance):
    """The demo's task generates its problems: no data folder."""

    task = ArithmeticTask()
    data_dir = None


def _kit_classes() -> list[type[TaskConformance]]:
    found, stack = [], list(TaskConformance.__subclasses__())
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if cls.task_name is not None or cls.task is not None:
            found.append(cls)
    return found


def test_every_task_of_the_plugin_has_a_conformance_class() -> None:
    plugin: list[type[Task]] = [*math_tasks.TASKS, *commonsense_tasks.TASKS]
    covered = {cls.task_name for cls in _kit_classes() if cls.task_name}
    assert covered == {task.name for task in plugin}
