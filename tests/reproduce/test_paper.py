"""The paper's published numbers as the project's reference page gives them: parsed from that page (beside the
repository) and compared with the table in ``paper.py``."""

from __future__ import annotations

import re

import pytest

from llm_adapters_reproduce import paper
from tests.shared_data import REPO

REFERENCE = REPO.parent / "shared" / "docs" / "seed-reference.md"
MATH6 = ["multiarith", "gsm8k", "addsub", "aqua", "singleeq", "svamp"]
COMMONSENSE = ["boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc-easy", "arc-challenge", "openbookqa"]


def _llama7b_block(text: str, heading: str) -> dict[str, list[float]]:
    """The LLaMA-7B rows under the bullet ``heading``: ``{"LoRA": [95.0, ...]}`` (the average dropped)."""
    section = text[text.index(heading) :]
    block = section[section.index("  - LLaMA-7B:") :].split("  - LLaMA-13B:")[0]
    rows = {}
    for name, numbers in re.findall(r"    - (\w+) ([\d./]+)", block):
        rows[name] = [float(x) for x in numbers.split("/")][:-1]
    return rows


def test_the_llama7b_rows_match_the_reference_page() -> None:
    if not REFERENCE.is_file():
        pytest.skip(f"the reference page is not at {REFERENCE}")
    text = REFERENCE.read_text(encoding="utf-8")
    math = _llama7b_block(text, "- **Math, six datasets**")
    common = _llama7b_block(text, "- **Commonsense**")
    assert sorted(math) == sorted(common) == ["LoRA", "Parallel", "Prefix", "Series"]
    for row in math:
        assert paper.paper_row(row, MATH6) == dict(zip(MATH6, math[row], strict=True))
        assert paper.paper_row(row, COMMONSENSE) == dict(zip(COMMONSENSE, common[row], strict=True))
    # MAWPS comes from the four-data-set table: "LLaMA-7B P/S/Pa/L | 24.4/33.3/35.3/37.5 | ... | 63.4/77.7/82.4/79.0"
    four = re.search(r"\| LLaMA-7B P/S/Pa/L \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", text)
    assert four is not None
    mawps = [float(x) for x in four.group(3).split("/")]
    assert [paper.LLAMA_7B[r]["mawps"] for r in ("Prefix", "Series", "Parallel", "LoRA")] == mawps


def test_rows_and_tasks_the_paper_does_not_have() -> None:
    assert paper.paper_row("DoRA", ["addsub"]) is None
    assert paper.paper_row(None, ["addsub"]) is None
    assert paper.paper_row("LoRA", ["mathqa"]) is None
    assert paper.paper_row("LoRA", ["mathqa", "addsub"]) == {"mathqa": None, "addsub": 83.3}
