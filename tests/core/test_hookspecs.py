"""Every hook is documented, and every hook has a test of its own named ``test_hook_<name>``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from llm_adapters import hookspecs

HOOKS = sorted(name for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "llm_adapters_spec"))
TESTS_ROOT = Path(__file__).resolve().parents[1]


def test_there_are_hooks() -> None:
    assert HOOKS == [
        "register_adapters",
        "register_commands",
        "register_model_families",
        "register_model_sources",
        "register_tasks",
        "register_templates",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    for word in ("When:", "Receives:", "Must:"):
        assert word in doc, f"hook {hook} docstring lacks {word!r}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook: str) -> None:
    pattern = re.compile(rf"def test_hook_{hook}\b")
    found = [p for p in TESTS_ROOT.rglob("test_*.py") if pattern.search(p.read_text())]
    assert found, f"no test named test_hook_{hook} under {TESTS_ROOT}"
