"""A seeded generator of one- and two-step arithmetic word problems, in the reference data format.

Each record is ``{"instruction": question, "input": "", "output": worked answer, "answer": "N"}`` where the
worked answer is one short sentence with the computation, ending ``"The answer is N."`` (the form the
reference's math data and answer extraction use). Numbers are small enough for a small model to learn the
operations in minutes, which is what the demo shows.

:func:`split_problems` gives disjoint training and held-out sets (no question appears in both).
:func:`extract_answer` reads the number a generation gives; :func:`is_correct` scores it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

NAMES = [
    ("Anna", "she"), ("Ben", "he"), ("Carla", "she"), ("David", "he"), ("Emma", "she"), ("Farid", "he"),
    ("Grace", "she"), ("Hugo", "he"), ("Iris", "she"), ("Jonas", "he"), ("Kira", "she"), ("Liam", "he"),
    ("Maya", "she"), ("Noah", "he"), ("Olga", "she"), ("Pedro", "he"), ("Rosa", "she"), ("Sam", "he"),
]  # fmt: skip
ITEMS = ["apples", "marbles", "stickers", "pencils", "cookies", "books", "stamps", "shells", "cards", "coins"]
CONTAINERS = ["boxes", "bags", "baskets", "jars", "packs", "rows"]

Problem = dict[str, str]


def _record(question: str, work: str, answer: int) -> Problem:
    return {"instruction": question, "input": "", "output": f"{work} The answer is {answer}.", "answer": str(answer)}


def _add(rng: random.Random) -> Problem:
    (name, he), item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 40), rng.randint(2, 30)
    q = f"{name} has {a} {item}. {he.capitalize()} gets {b} more. How many {item} does {name} have now?"
    return _record(q, f"{name} has {a} + {b} = {a + b} {item}.", a + b)


def _subtract(rng: random.Random) -> Problem:
    (name, _), item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(10, 60)
    b = rng.randint(1, a - 1)
    friend = rng.choice([n for n, _ in NAMES if n != name])
    q = f"{name} had {a} {item} and gave {b} of them to {friend}. How many {item} does {name} have left?"
    return _record(q, f"{name} has {a} - {b} = {a - b} {item} left.", a - b)


def _multiply(rng: random.Random) -> Problem:
    item, box = rng.choice(ITEMS), rng.choice(CONTAINERS)
    a, b = rng.randint(2, 10), rng.randint(2, 10)
    q = f"There are {a} {box} with {b} {item} in each. How many {item} are there in total?"
    return _record(q, f"There are {a} * {b} = {a * b} {item}.", a * b)


def _divide(rng: random.Random) -> Problem:
    (name, _), item = rng.choice(NAMES), rng.choice(ITEMS)
    per, k = rng.randint(2, 10), rng.randint(2, 6)
    q = f"{name} shares {per * k} {item} equally among {k} friends. How many {item} does each friend get?"
    return _record(q, f"Each friend gets {per * k} / {k} = {per} {item}.", per)


def _two_step(rng: random.Random) -> Problem:
    (name, _), item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(5, 30), rng.randint(2, 20)
    c = rng.randint(1, a + b - 1)
    q = f"{name} has {a} {item}, buys {b} more and then gives away {c}. How many {item} does {name} have now?"
    return _record(q, f"{name} has {a} + {b} - {c} = {a + b - c} {item}.", a + b - c)


#: problem kinds and their weights
KINDS: dict[str, tuple[Callable[[random.Random], Problem], int]] = {
    "add": (_add, 3),
    "subtract": (_subtract, 3),
    "multiply": (_multiply, 2),
    "divide": (_divide, 1),
    "two_step": (_two_step, 1),
}


def generate_problems(n: int, *, seed: int = 0) -> list[Problem]:
    """``n`` distinct problems (by question), deterministic for a given ``seed``."""
    if n < 0:
        raise ValueError(f"the number of problems must be >= 0, got {n}")
    rng = random.Random(seed)
    makers = [fn for fn, _ in KINDS.values()]
    weights = [w for _, w in KINDS.values()]
    seen: set[str] = set()
    out: list[Problem] = []
    while len(out) < n:
        rec = rng.choices(makers, weights)[0](rng)
        if rec["instruction"] not in seen:
            seen.add(rec["instruction"])
            out.append(rec)
    return out


def split_problems(n_train: int, n_heldout: int, *, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Disjoint training and held-out problem sets."""
    problems = generate_problems(n_train + n_heldout, seed=seed)
    return problems[:n_train], problems[n_train:]


_ANSWER_RE = re.compile(r"answer is\s*:?\s*\$?(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_answer(text: str) -> float | None:
    """The number after the first "The answer is", else the last number in ``text``, else None."""
    m = _ANSWER_RE.search(text)
    if m is None:
        numbers = _NUMBER_RE.findall(text)
        if not numbers:
            return None
        raw = numbers[-1]
    else:
        raw = m.group(1)
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def is_correct(generation: str, answer: Any) -> bool:
    pred = extract_answer(generation)
    return pred is not None and abs(pred - float(answer)) < 1e-6
