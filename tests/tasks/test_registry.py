"""Every task of the issue is registered through the task hook and found by name, alias, folder or suite."""

from __future__ import annotations

import pytest

from llm_adapters import get_task, tasks
from llm_adapters.errors import ConfigError
from llm_adapters_eval.runner import select_tasks

MATH = ["addsub", "multiarith", "singleeq", "gsm8k", "aqua", "svamp", "mawps", "mathqa"]
COMMONSENSE = ["boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc-easy", "arc-challenge", "openbookqa"]


def test_all_sixteen_tasks_are_registered_with_their_suites(task_plugins) -> None:
    table = tasks()
    assert sorted(table) == sorted(MATH + COMMONSENSE)
    assert {n for n, t in table.items() if t.suite == "math"} == set(MATH)
    assert {n for n, t in table.items() if t.suite == "commonsense"} == set(COMMONSENSE)
    records = {r.name: r.tasks for r in task_plugins.records.values()}
    assert sorted(records["llm_adapters_tasks.math_tasks"]) == sorted(MATH)
    assert sorted(records["llm_adapters_tasks.commonsense_tasks"]) == sorted(COMMONSENSE)


def test_names_are_case_insensitive() -> None:
    assert get_task("GSM8K").name == "gsm8k"
    assert [t.name for t in select_tasks("GSM8K,Svamp,ARC-Easy")] == ["gsm8k", "svamp", "arc-easy"]


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("social_i_qa", "siqa"),
        ("obqa", "openbookqa"),
        ("arc_challenge", "arc-challenge"),
        ("ARC-e", "arc-easy"),
        ("AQuA", "aqua"),
        ("MAWPS", "mawps"),
        ("WinoGrande", "winogrande"),
    ],
)
def test_aliases_and_folder_names(spelling: str, name: str) -> None:
    assert [t.name for t in select_tasks(spelling)] == [name]


def test_suites_select_every_task_in_order_without_duplicates() -> None:
    assert [t.name for t in select_tasks("math")] == MATH
    assert [t.name for t in select_tasks("Commonsense")] == COMMONSENSE
    assert [t.name for t in select_tasks(["gsm8k", "math"])] == MATH[3:4] + [n for n in MATH if n != "gsm8k"]


def test_unknown_task_names_the_installed_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'gsm9k'; installed tasks: addsub, aqua, arc-challenge"):
        select_tasks("gsm8k,gsm9k")
    with pytest.raises(ConfigError, match="suites: commonsense, math"):
        select_tasks("gsm9k")


def test_budgets_follow_the_reference() -> None:
    assert {get_task(n).max_new_tokens for n in MATH} == {256}
    assert {get_task(n).max_new_tokens for n in COMMONSENSE} == {32}
