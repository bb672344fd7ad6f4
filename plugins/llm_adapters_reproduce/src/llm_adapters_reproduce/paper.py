"""The published LLaMA-7B results of the LLM-Adapters paper, shown beside ours in ``results.md``.

Accuracy in percent, per task (our task names) and per method row of the paper. Source: Hu et al.,
"LLM-Adapters: An Adapter Family for Parameter-Efficient Fine-Tuning of Large Language Models" (EMNLP 2023,
arXiv 2304.01933), as the reference repository (AGI-Edgerunners/LLM-Adapters) publishes the tables in its
README: the six math data sets at commit 59ea327 (2023-10-08), MAWPS from the four-data-set math table and the
eight commonsense data sets at its latest commit. The math adapters were trained on math_10k, the commonsense
ones on commonsense_170k, each evaluated on the whole test set with the reference scripts (4-beam search).
"""

from __future__ import annotations

MODEL = "LLaMA-7B"
SOURCE = (
    "Hu et al., LLM-Adapters (EMNLP 2023), LLaMA-7B rows as published in the README of AGI-Edgerunners/"
    "LLM-Adapters (math: six data sets at commit 59ea327, MAWPS from the four-data-set table; commonsense: the "
    "latest README); trained on math_10k / commonsense_170k, whole test sets, the reference scripts' 4-beam "
    "evaluation"
)

#: the paper's row for each adapter type, where it has one
ROW_OF_TYPE: dict[str, str] = {"prefix": "Prefix", "series": "Series", "parallel": "Parallel", "lora": "LoRA"}

_MATH6 = ("multiarith", "gsm8k", "addsub", "aqua", "singleeq", "svamp")
_COMMONSENSE = ("boolq", "piqa", "siqa", "hellaswag", "winogrande", "arc-easy", "arc-challenge", "openbookqa")


def _rows(tasks: tuple[str, ...], rows: dict[str, tuple[float, ...]]) -> dict[str, dict[str, float]]:
    return {row: dict(zip(tasks, values, strict=True)) for row, values in rows.items()}


#: row -> task -> accuracy (%)
LLAMA_7B: dict[str, dict[str, float]] = {}
for _row, _values in _rows(
    _MATH6,
    {
        "Prefix": (63.2, 24.4, 57.0, 14.2, 55.3, 38.1),
        "Series": (92.8, 33.3, 80.0, 15.0, 83.5, 52.3),
        "Parallel": (94.5, 35.3, 86.6, 18.1, 86.0, 49.6),
        "LoRA": (95.0, 37.5, 83.3, 18.9, 84.4, 52.1),
    },
).items():
    LLAMA_7B.setdefault(_row, {}).update(_values)
for _row, _mawps in {"Prefix": 63.4, "Series": 77.7, "Parallel": 82.4, "LoRA": 79.0}.items():
    LLAMA_7B[_row]["mawps"] = _mawps
for _row, _values in _rows(
    _COMMONSENSE,
    {
        "Prefix": (64.3, 76.8, 73.9, 42.1, 72.1, 72.9, 54.0, 60.6),
        "Series": (63.0, 79.2, 76.3, 67.9, 75.7, 74.5, 57.1, 72.4),
        "Parallel": (67.9, 76.4, 78.8, 69.8, 78.9, 73.7, 57.3, 75.2),
        "LoRA": (68.9, 80.7, 77.4, 78.1, 78.8, 77.8, 61.3, 74.8),
    },
).items():
    LLAMA_7B[_row].update(_values)


def paper_row(row: str | None, tasks: list[str]) -> dict[str, float | None] | None:
    """The paper's accuracies (%) of ``row`` for ``tasks`` (None where it published none), or None when the
    paper has no such row or no number for any of the tasks."""
    if row is None or row not in LLAMA_7B:
        return None
    values = {t: LLAMA_7B[row].get(t) for t in tasks}
    return values if any(v is not None for v in values.values()) else None
