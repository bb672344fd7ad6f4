"""The generic extraction rules, mode by mode, on hand-written generations."""

from __future__ import annotations

import math

import pytest

from llm_adapters_tasks import scoring


# ---- numbers: reference -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 4.", 4.0),
        ("There are 1,234 apples", 1234.0),
        ("3,4", 34.0),  # every comma is deleted, lists fuse
        ("He has 3/4 of a pie", 4.0),  # no fractions: the last number is the denominator
        ("The answer is 5.\n\n### Instruction: add 7", 7.0),  # text after the answer still counts
        ("It costs -5 dollars", -5.0),
        ("The answer is 5.5.", 5.5),
        ("50%", 50.0),
        ("12 and then ### Response: 99", 12.0),  # cut at the next response marker
        ("no digits here", None),  # the reference's +inf
        ("", None),
    ],
)
def test_reference_last_number(text: str, expected: float | None) -> None:
    got = scoring.reference_last_number(scoring.reference_response(text))
    assert got == expected


# ---- numbers: robust --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 4. Then he buys 8 more.", 4.0),  # the stated answer, not the last number
        ("3 + 9 = 12 apples. The answer is 12 apples.", 12.0),
        ("The answer is 7 + 5 = 12.", 12.0),
        ("The answer is 3.<|im_end|>The answer is 9.", 3.0),  # nothing after EOS counts
        ("4 eggs</s> 17", 4.0),
        ("So 6 remain.\n### Instruction:\nWhat is 2 + 2?", 6.0),  # a new section ends the answer
        ("There are 1,234 books", 1234.0),
        ("The list is 3,4", 4.0),  # a list is not a thousands separator
        ("The answer is $118 000.", 118000.0),
        ("The answer is 3/4.", 0.75),
        ("The answer is 1 1/2 cups.", 1.5),
        ("The answer is 25%.", 25.0),
        ("The answer is $1,200.50.", 1200.5),
        ("It weighs .5 kg", 0.5),
        ("5-3=2", 2.0),
        ("He lost -$7 in total", -7.0),
        ("#### 72", 72.0),
        ("so \\boxed{42} is it", 42.0),
        ("Final answer: 9", 9.0),
        ("The answer is unknown.", None),
        ("3/0", None),
        ("", None),
    ],
)
def test_robust_number(text: str, expected: float | None) -> None:
    assert scoring.robust_number(scoring.cut_at_end(text)) == expected


def test_numbers_match_tolerance_is_the_reference_0_001() -> None:
    assert scoring.numbers_match(4.0009, "4")
    assert scoring.numbers_match(3.999, "4.0")
    assert not scoring.numbers_match(4.002, "4")
    assert scoring.numbers_match(11 / 6, "1.8333333333333335")
    assert not scoring.numbers_match(None, "4")
    assert not scoring.numbers_match(math.inf, "4")
    assert not scoring.numbers_match(4.0, "four")


def test_parse_number_reads_labels() -> None:
    assert scoring.parse_number("576.0") == 576.0
    assert scoring.parse_number("1,000") == 1000.0
    assert scoring.parse_number("3/4") == 0.75
    assert scoring.parse_number("n/a") is None


# ---- letters ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Because the answer is (D).", "B"),  # the first capital A-E anywhere
        ("Each train is fast. The answer is (C).", "E"),
        ("The answer is (D).", "D"),
        ("the answer is d", None),  # case-sensitive
        ("", None),
    ],
)
def test_reference_first_letter(text: str, expected: str | None) -> None:
    assert scoring.reference_first_letter(scoring.reference_response(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Because the answer is (D).", "D"),
        ("Each train is fast. The answer is (C).", "C"),
        ("The answer is (d)", "D"),
        ("Answer: B", "B"),
        ("The answer is option E.", "E"),
        ("Every option but one is wrong; the answer is E", "E"),
        ("D", "D"),
        ("(b).", "B"),
        ("C) 2.65", "C"),
        ("(A) 23.65", "A"),  # a reply that starts with an option
        ("I think (A) is tempting but (C) is right", "C"),  # else the last one in parentheses
        ("The answer is a number near 4.", None),  # a lower-case word is no letter
        ("A's share is larger", None),
        ("The answer is (B)</s>The answer is (C)", "B"),
        ("", None),
    ],
)
def test_robust_letter(text: str, expected: str | None) -> None:
    assert scoring.robust_letter(scoring.cut_at_end(text)) == expected


# ---- labels -------------------------------------------------------------------------------------------
ANSWERS = ("answer1", "answer2", "answer3", "answer4", "answer5")


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("the correct answer is answer3", ANSWERS, "answer3"),
        ("answer1 is wrong, the correct answer is answer2", ANSWERS, "answer1"),  # the first match
        ("The correct answer is Answer2", ANSWERS, None),  # case-sensitive
        ("answer1/answer2/answer3", ANSWERS, "answer1"),
        ("falsehood", ("true", "false"), "false"),  # substrings match
        ("True", ("true", "false"), None),
        ("", ANSWERS, None),
    ],
)
def test_reference_first_label(text: str, labels: tuple[str, ...], expected: str | None) -> None:
    assert scoring.reference_first_label(scoring.reference_response(text), labels) == expected


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("the correct answer is answer3", ANSWERS, "answer3"),
        ("answer1 is wrong, the correct answer is answer2", ANSWERS, "answer2"),  # "answer is" wins
        ("The correct answer is Answer2", ANSWERS, "answer2"),
        ("I pick Answer 4.", ANSWERS, "answer4"),
        ("Solution 2 is better", ("solution1", "solution2"), "solution2"),
        ("the correct answer is option1</s>the correct answer is option2", ("option1", "option2"), "option1"),
        ("falsehood", ("true", "false"), None),  # whole words only
        ("TRUE", ("true", "false"), "true"),
        ("answer:ending3", ("ending1", "ending2", "ending3", "ending4"), "ending3"),
        ("no label", ANSWERS, None),
    ],
)
def test_robust_label(text: str, labels: tuple[str, ...], expected: str | None) -> None:
    assert scoring.robust_label(scoring.cut_at_end(text), labels) == expected


def test_label_matching_per_mode() -> None:
    assert scoring.labels_match("true", "true", case_sensitive=True)
    assert not scoring.labels_match("True", "true", case_sensitive=True)
    assert scoring.labels_match("True ", "true", case_sensitive=False)
    assert not scoring.labels_match(None, "true", case_sensitive=False)


def test_unique_text_match() -> None:
    options = [("answer1", "a wooden spoon"), ("answer2", "a copper wire"), ("answer3", "wire")]
    assert scoring.unique_text_match("It is a copper wire.", options) is None  # "wire" also occurs: ambiguous
    assert scoring.unique_text_match("A Wooden Spoon", options) == "answer1"
    assert scoring.unique_text_match("nothing", options) is None


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown scoring mode 'strict'; choose one of: reference, robust"):
        scoring.check_mode("strict")
