"""Answer extraction and judging rules shared by tasks, in two modes.

``reference`` reproduces the LLM-Adapters evaluation scripts exactly, flaws included, so that numbers stay
comparable with the paper:

* numbers: delete every comma, take the **last** match of ``-?\\d+\\.?\\d*`` as a float; correct iff it is
  within 0.001 of the label (no match: the scripts use +inf, which is never correct; we record ``None``);
* letters (AQuA): the **first** capital A-E anywhere in the text, so "Each ..." reads as "E";
* labels (commonsense): the **first** match of a case-sensitive alternation such as ``true|false``;
  correct iff it equals the label string.

``robust`` fixes the known flaws:

* text after the end of the answer is ignored (the first end-of-sequence token text such as ``</s>`` or
  ``<|im_end|>``, or a new ``### Instruction:`` / ``### Response:`` section);
* an explicit answer ("The answer is 12", "answer: (D)", "#### 12", ``\\boxed{12}``) is preferred to the last
  number or letter;
* numbers: thousands separators (``1,234``, ``118 000``) but not lists (``3,4``), fractions (``3/4``), mixed numbers
  (``1 1/2``), percentages (``25%`` reads as 25), currency signs, leading decimals (``.5``);
* letters: "answer is (D)", "(D)", "D)"; lower case only inside parentheses ("answer is a ..." is no letter);
* labels: case-insensitive, whole words only, "Answer 2" reads as ``answer2``, "the answer is X" preferred.

Every function here is task-agnostic; task plugins combine them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction

from llm_adapters.task import SCORING_MODES

#: End-of-sequence token texts of common tokenizers: in ``robust`` mode nothing after them counts.
EOS_TEXTS = (
    "</s>",
    "<|endoftext|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<eos>",
)
#: A new prompt section: the model has finished its answer and started inventing the next example.
SECTION_MARKERS = ("### Instruction:", "### Input:", "### Response:")

#: The reference scripts' number pattern.
REFERENCE_NUMBER = re.compile(r"-?\d+\.?\d*")
#: Default tolerance of numeric answers (the reference's 0.001).
TOLERANCE = 1e-3


def check_mode(scoring: str) -> str:
    """``scoring`` if it is a known mode, else a ``ValueError`` naming the modes."""
    if scoring not in SCORING_MODES:
        raise ValueError(f"unknown scoring mode {scoring!r}; choose one of: {', '.join(SCORING_MODES)}")
    return scoring


# ---- where the answer ends ----------------------------------------------------------------------
def reference_response(generation: str) -> str:
    """The reference's cut: the decoded text between the prompt's ``### Response:`` and the next one.

    The scripts decode prompt and generation together and keep ``split("### Response:")[1]``; on the
    generation alone that is everything before its first ``### Response:``, stripped.
    """
    return generation.split("### Response:")[0].strip()


def cut_at_end(generation: str, stops: Iterable[str] = ()) -> str:
    """``robust`` cut: the text before the first end-of-sequence text, section marker or extra stop."""
    end = len(generation)
    for marker in (*EOS_TEXTS, *SECTION_MARKERS, *stops):
        if marker:
            at = generation.find(marker)
            if 0 <= at < end:
                end = at
    return generation[:end].strip()


# ---- numbers --------------------------------------------------------------------------------------
def reference_last_number(text: str) -> float | None:
    """The reference rule: commas removed, the last ``-?\\d+\\.?\\d*`` as a float (None: no number)."""
    found = REFERENCE_NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else None


_NUMBER = re.compile(
    r"""
    (?P<neg>(?<![\w)\].])-\s?)?          # a minus sign that is not a subtraction ("5-3")
    (?:[$€£]\s?)?
    (?:
        (?P<whole>\d+)\s+(?P<mnum>\d+)\s*/\s*(?P<mden>\d+)(?![\d.])     # mixed number: 1 1/2
      | (?P<num>\d+(?:\.\d+)?)\s*/\s*(?P<den>\d+(?:\.\d+)?)(?![\d.])  # fraction: 3/4
      | (?P<val>
            \d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?          # 1,234.5
          | \d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d/])(?:\.\d+)?  # 118 000 (space-grouped)
          | \d+(?:\.\d+)?|\.\d+                             # 12, 4.5, .5
        )
    )
    (?P<pct>\s?%)?
    """,
    re.VERBOSE,
)


def _value(m: re.Match[str]) -> float | None:
    if m["whole"] is not None:
        if int(m["mden"]) == 0:
            return None
        value = float(int(m["whole"]) + Fraction(int(m["mnum"]), int(m["mden"])))
    elif m["num"] is not None:
        den = float(m["den"])
        if den == 0:
            return None
        value = float(m["num"]) / den
    else:
        value = float(re.sub(r"[,\s]", "", m["val"]))
    return -value if m["neg"] else value


def numbers(text: str) -> list[float]:
    """Every number in ``text`` under the ``robust`` reading, in order."""
    out = []
    for m in _NUMBER.finditer(text):
        v = _value(m)
        if v is not None and math.isfinite(v):
            out.append(v)
    return out


_ANSWER_MARKER = re.compile(
    r"(?i:(?:final\s+)?answer\s*(?:is|was|would\s+be|will\s+be|=|:)\s*:?)|####|\\boxed\{",
)
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n|;")


def answer_segment(text: str) -> str | None:
    """The text after the last explicit answer marker, up to the end of its sentence (None: no marker)."""
    markers = list(_ANSWER_MARKER.finditer(text))
    if not markers:
        return None
    rest = text[markers[-1].end() :]
    end = _SENTENCE_END.search(rest)
    return rest[: end.start()] if end else rest


def robust_number(text: str) -> float | None:
    """The ``robust`` numeric answer of an already cut text.

    The number stated after the last answer marker wins ("The answer is 7 + 5 = 12." gives 12: with an
    ``=`` in the sentence its last number, else its first); otherwise the last number in the text.
    """
    segment = answer_segment(text)
    if segment is not None:
        found = numbers(segment)
        if found:
            return found[-1] if "=" in segment else found[0]
    found = numbers(text)
    return found[-1] if found else None


def parse_number(text: str) -> float | None:
    """A label such as ``"576.0"``, ``"1,000"`` or ``"3/4"`` as a float (None if it holds no number)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        found = numbers(str(text))
        return found[0] if len(found) == 1 else None


def numbers_match(prediction: float | None, answer: str, tolerance: float = TOLERANCE) -> bool:
    """True iff ``prediction`` lies within ``tolerance`` of the numeric ``answer`` (both finite)."""
    if prediction is None or not math.isfinite(prediction):
        return False
    label = parse_number(answer)
    return label is not None and abs(label - prediction) <= tolerance


# ---- letters (A-E multiple choice) ----------------------------------------------------------------
def reference_first_letter(text: str, letters: str = "ABCDE") -> str | None:
    """The reference rule: the first capital letter of ``letters`` anywhere in the stripped text."""
    found = re.findall("|".join(letters), text.strip())
    return found[0] if found else None


def robust_letter(text: str, letters: str = "ABCDE") -> str | None:
    """The ``robust`` letter of an already cut text, or None.

    In order: the last "answer is (D)" / "answer: D" / "answer is option D"; a text that is only a letter
    ("D", "(d)", "D."); a text that starts with "D)" or "(D)"; the last "(D)" anywhere. Lower case counts
    only inside parentheses, so "the answer is a number" names no letter.
    """
    upper, lower = letters.upper(), letters.lower()
    choice = rf"(?:\(\s*([{upper}{lower}])\s*\)|\b([{upper}])\b(?![')]?\w))"
    answer_is = re.compile(
        rf"(?i:answer)\s*(?i:is|was|would\s+be|:)?\s*:?\s*(?i:option|choice)?\s*:?\s*{choice}",
    )
    hits = list(answer_is.finditer(text))
    if hits:
        m = hits[-1]
        return (m[1] or m[2]).upper()
    alone = re.fullmatch(rf"\(?\s*([{upper}{lower}])\s*\)?[.:]?", text.strip())
    if alone:
        return alone[1].upper()
    lead = re.match(rf"\s*\(?([{upper}])\)[\s:.]|\s*\(([{upper}])\)", text)
    if lead:
        return (lead[1] or lead[2]).upper()
    inside = re.findall(rf"\(([{upper}])\)", text)
    return inside[-1] if inside else None


# ---- labels (commonsense multiple choice) ---------------------------------------------------------
def reference_first_label(text: str, labels: Sequence[str]) -> str | None:
    """The reference rule: the first match of the case-sensitive alternation ``label1|label2|...``."""
    found = re.findall("|".join(labels), text.strip())
    return found[0] if found else None


_SPACED_LABEL = re.compile(r"\b(answer|solution|option|ending)\s*(?:#|no\.?|number)?\s*(\d)\b", re.IGNORECASE)


def robust_label(text: str, labels: Sequence[str]) -> str | None:
    """The ``robust`` label of an already cut text: case-insensitive, whole words, "Answer 2" read as
    ``answer2``; the label after the last "answer is" first, else the first label named. Returned in the
    spelling of ``labels``."""
    lowered = {label.lower(): label for label in labels}
    text = _SPACED_LABEL.sub(lambda m: m[1].lower() + m[2], text).lower()
    alternation = "|".join(re.escape(k) for k in sorted(lowered, key=len, reverse=True))
    hits = list(re.finditer(rf"answer(?:\s+is|\s+would\s+be|\s*:)\s*:?\s*\b({alternation})\b", text))
    if hits:
        return lowered[hits[-1][1]]
    first = re.search(rf"\b({alternation})\b", text)
    return lowered[first[1]] if first else None


def labels_match(prediction: str | None, answer: str, *, case_sensitive: bool) -> bool:
    """Exact label equality (``reference``), or equality ignoring case and surrounding space."""
    if prediction is None:
        return False
    if case_sensitive:
        return prediction == answer
    return prediction.strip().lower() == answer.strip().lower()


def unique_text_match(text: str, options: Sequence[tuple[str, str]]) -> str | None:
    """The label of the one option whose text occurs in ``text`` (case-insensitive, whole words), if
    exactly one does; used as a last resort when a model answers with the option's words."""
    lowered = text.lower()
    hits = {
        label
        for label, body in options
        if body.strip() and re.search(rf"(?<!\w){re.escape(body.strip().lower())}(?!\w)", lowered)
    }
    return hits.pop() if len(hits) == 1 else None
