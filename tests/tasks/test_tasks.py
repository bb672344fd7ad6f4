"""Task by task: options parsed from the instructions, extraction per scoring mode, judging."""

from __future__ import annotations

import pytest

from llm_adapters import get_task
from llm_adapters.task import Example, Option

from .conftest import ASSETS, shared_or_skip


def _ex(instruction: str, answer: str) -> Example:
    return Example(instruction=instruction, answer=answer)


AQUA = _ex(
    "Find the difference? Answer Choices: (A) 23.65 (B) 1000 (C) 35.62 (D) 2.65 (E) 1023.65",
    "D",
)
MATHQA = _ex("what is the profit ? The options: A ) 38 , B ) 27.675 , C ) 30 , D ) DAtA inADEquAtE , E ) nonE", "A")


def test_aqua_and_mathqa_options() -> None:
    assert get_task("aqua").options(AQUA) == [
        Option("A", "23.65"),
        Option("B", "1000"),
        Option("C", "35.62"),
        Option("D", "2.65"),
        Option("E", "1023.65"),
    ]
    assert get_task("mathqa").options(MATHQA) == [
        Option("A", "38"),
        Option("B", "27.675"),
        Option("C", "30"),
        Option("D", "DAtA inADEquAtE"),
        Option("E", "nonE"),
    ]


def test_mathqa_options_written_as_a_list() -> None:
    listed = _ex("find the ratio . The options: ['A ) 2 : 3', 'B ) 4 : 5', 'C ) 16 : 9']", "C")
    assert get_task("mathqa").options(listed) == [Option("A", "2 : 3"), Option("B", "4 : 5"), Option("C", "16 : 9")]


def test_commonsense_options_in_each_published_layout() -> None:
    piqa = _ex(
        "Please choose the correct solution to the question: Q?\n\nSolution1: use a cup\n\nSolution2: use a "
        "fork\n\nAnswer format: solution1/solution2",
        "solution1",
    )
    assert get_task("piqa").options(piqa) == [Option("solution1", "use a cup"), Option("solution2", "use a fork")]
    wino = get_task("winogrande").load(ASSETS)[0]
    assert get_task("winogrande").options(wino) == [Option("option1", "trophy"), Option("option2", "suitcase")]
    hella = get_task("hellaswag").load(ASSETS)[1]
    assert [o.label for o in get_task("hellaswag").options(hella)] == ["ending1", "ending2", "ending3", "ending4"]
    assert get_task("hellaswag").options(hella)[1].text == "scrubs the car with a sponge."
    boolq = _ex(
        "Please answer the following question with true or false, question: is it?\n\nAnswer format: true/false", "true"
    )
    assert get_task("boolq").options(boolq) == [Option("true", "true"), Option("false", "false")]


def test_arc_examples_with_a_fifth_answer() -> None:
    task = get_task("arc-easy")
    five = [ex for ex in task.load(shared_or_skip()) if ex.answer == "answer5"]
    assert five, "ARC-Easy has a few answer5 labels"
    labels = [o.label for o in task.options(five[0])]
    assert labels == ["answer1", "answer2", "answer3", "answer4", "answer5"]
    assert task.extract("the correct answer is answer5", "reference", five[0]) == "answer5"
    assert task.extract("the correct answer is Answer5", "robust", five[0]) == "answer5"


def test_loglik_continuations_are_the_training_targets() -> None:
    opt = Option("answer2", "a copper wire")
    assert get_task("openbookqa").continuation(opt) == "the correct answer is answer2"
    assert get_task("openbookqa").continuation(opt, "text") == "a copper wire"
    assert get_task("aqua").continuation(Option("D", "2.65")) == "The answer is (D)."
    assert get_task("aqua").continuation(Option("D", "2.65"), "text") == "2.65"


# ---- extraction per mode, through the tasks -----------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "generation", "answer", "reference", "robust"),
    [
        # numeric: last number vs the stated answer
        ("gsm8k", "The answer is 18. Next question: 3", "18.0", (3.0, False), (18.0, True)),
        ("svamp", "875 books</s>\n1,000", "875.0", (1000.0, False), (875.0, True)),
        ("mawps", "Each gets 11/6 pies.", "1.8333333333333335", (6.0, False), (11 / 6, True)),
        ("addsub", "She has 4 left.", "4", (4.0, True), (4.0, True)),
        ("multiarith", "The answer is 1,500.", "1500.0", (1500.0, True), (1500.0, True)),
        ("singleeq", "nothing", "9.0", (None, False), (None, False)),
        # letters: first capital vs "answer is (X)"
        ("aqua", "Each option... The answer is (D).", "D", ("E", False), ("D", True)),
        ("mathqa", "So the answer is (a)", "A", (None, False), ("A", True)),
        # labels: case-sensitive first match vs robust
        ("boolq", "True", "true", (None, False), ("true", True)),
        ("boolq", "Yes, it is.", "true", (None, False), ("true", True)),
        ("piqa", "solution1 is bad, the answer is solution2", "solution2", ("solution1", False), ("solution2", True)),
        ("siqa", "the correct answer is answer3", "answer3", ("answer3", True), ("answer3", True)),
        ("winogrande", "Option 2", "option2", (None, False), ("option2", True)),
        ("hellaswag", "the correct answer is ending4", "ending4", ("ending4", True), ("ending4", True)),
        ("arc-challenge", "ANSWER1", "answer1", (None, False), ("answer1", True)),
    ],
)
def test_extraction_per_mode(name, generation, answer, reference, robust) -> None:
    task = get_task(name)
    example = _ex(
        "Answer format: " + "/".join(task.choices) if task.choices and name not in ("aqua", "mathqa") else "Q?", answer
    )
    for mode, (prediction, correct) in (("reference", reference), ("robust", robust)):
        got = task.extract(generation, mode, example)
        if isinstance(prediction, float):
            assert got == pytest.approx(prediction), mode
        else:
            assert got == prediction, mode
        assert task.is_correct(got, answer, mode) is correct, mode
        scored = task.score(generation, example, mode)
        assert (scored.prediction, scored.correct, scored.scoring) == (got, correct, mode)


def test_robust_answers_named_by_option_value_or_text() -> None:
    aqua = get_task("aqua")
    assert aqua.extract("The difference is 2.65 dollars.", "robust", AQUA) == "D"
    assert aqua.extract("The difference is 2.65 dollars.", "reference", AQUA) is None
    obqa = get_task("openbookqa")
    example = obqa.load(ASSETS)[0]
    assert obqa.extract("A copper wire conducts best.", "robust", example) == "answer2"
    assert obqa.extract("A copper wire conducts best.", "reference", example) is None


def test_unknown_scoring_mode() -> None:
    with pytest.raises(ValueError, match="unknown scoring mode 'strict'"):
        get_task("gsm8k").extract("4", "strict")


# ---- the published rationales: independent counts -----------------------------------------------------
def test_teacher_rationales_agree_with_the_published_counts() -> None:
    """seed-reference 4.1: the rationale's final answer agrees with the label 771/1319 times on GSM8K (the
    reference's last-number rule) and 123/254 times on AQuA (its stated letter)."""
    data = shared_or_skip()
    gsm8k = get_task("gsm8k")
    assert sum(gsm8k.score(ex.output, ex, "reference").correct for ex in gsm8k.load(data)) == 771
    aqua = get_task("aqua")
    examples = aqua.load(data)
    assert sum(aqua.score(ex.output, ex, "robust").correct for ex in examples) == 123
    # the first-capital rule misreads rationales such as "The greatest ..." -> "E"
    assert sum(aqua.score(ex.output, ex, "reference").correct for ex in examples) < 123


@pytest.mark.parametrize("name", ["svamp", "mawps", "hellaswag", "winogrande", "openbookqa"])
def test_fixture_outputs_score_as_correct(name: str) -> None:
    task = get_task(name)
    for ex in task.load(ASSETS):
        output = ex.output or f"The answer is {ex.answer}."
        assert task.score(output, ex, "robust").correct, (name, ex.index)
        assert task.score(output, ex, "reference").correct, (name, ex.index)
