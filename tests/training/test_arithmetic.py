"""The word-problem generator: seeded, distinct, disjoint splits, answers that solve the question."""

from __future__ import annotations

import re

import pytest

from llm_adapters_demo.arithmetic import extract_answer, generate_problems, is_correct, split_problems


def _solve(question: str) -> int:
    """An independent reading of each question form."""
    n = [int(x) for x in re.findall(r"\d+", question)]
    if "more. How many" in question and "gives away" not in question:
        return n[0] + n[1]
    if "gave" in question:
        return n[0] - n[1]
    if "in each" in question:
        return n[0] * n[1]
    if "equally among" in question:
        return n[0] // n[1]
    if "gives away" in question:
        return n[0] + n[1] - n[2]
    raise AssertionError(f"unknown question form: {question}")


def test_seeded_distinct_and_in_the_reference_format() -> None:
    a = generate_problems(300, seed=3)
    assert a == generate_problems(300, seed=3)
    assert a != generate_problems(300, seed=4)
    assert len({p["instruction"] for p in a}) == 300
    for p in a:
        assert set(p) == {"instruction", "input", "output", "answer"} and p["input"] == ""
        assert p["output"].endswith(f"The answer is {p['answer']}.")
        assert int(p["answer"]) == _solve(p["instruction"]) >= 0
        assert is_correct(p["output"], p["answer"])
    kinds = {"+" in p["output"] and "-" in p["output"] for p in a} | {"*" in p["output"] for p in a}
    assert kinds == {True, False}


def test_split_is_disjoint() -> None:
    train, heldout = split_problems(200, 50, seed=0)
    assert len(train) == 200 and len(heldout) == 50
    assert not {p["instruction"] for p in train} & {p["instruction"] for p in heldout}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Anna has 5 + 7 = 12 apples. The answer is 12.", 12.0),
        ("the answer is: 1,234 coins", 1234.0),
        ("so 3 * 4 = 12, and 12 - 2 = 10", 10.0),  # no marker: the last number
        ("The answer is 7. Then 99 more", 7.0),  # the marker wins over later numbers
        ("no number here", None),
        ("The answer is -3.5.", -3.5),
    ],
)
def test_extract_answer(text: str, value: float | None) -> None:
    assert extract_answer(text) == value


def test_is_correct() -> None:
    assert is_correct("The answer is 12.", "12") and not is_correct("The answer is 13.", "12")
    assert not is_correct("nothing", "12")
