"""The three kinds of LLM-Adapters tasks: numeric answers, lettered choices (A-E) and named labels.

Each kind combines the generic rules of :mod:`llm_adapters.scoring`; the concrete data sets in
:mod:`llm_adapters_tasks.math_tasks` and :mod:`llm_adapters_tasks.commonsense_tasks` only set names, folders
and label sets.
"""

from __future__ import annotations

import ast
import re
from typing import ClassVar

from llm_adapters.task import Example, Option, Prediction

from . import scoring
from .layout import ReferenceTask


class NumericTask(ReferenceTask):
    """A math word problem whose answer is a number (AddSub, GSM8K, SVAMP, ...).

    reference: the last number of the response, correct within 0.001 of the label.
    robust: the number after "The answer is" (else the last number), read with fractions, percentages and
    thousands separators, in the text before the end of sequence; correct within 0.001.
    """

    suite = "math"
    max_new_tokens = 256

    def extract_reference(self, generation: str) -> Prediction:
        return scoring.reference_last_number(scoring.reference_response(generation))

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        return scoring.robust_number(scoring.cut_at_end(generation))

    def is_correct(self, prediction: Prediction, answer: str, scoring_mode: str = "robust") -> bool:
        if isinstance(prediction, str):
            prediction = scoring.parse_number(prediction)
        return scoring.numbers_match(prediction, answer)


_AQUA_OPTION = re.compile(r"\(([A-E])\)\s*(.*?)(?=\s*\([A-E]\)|$)", re.DOTALL)
_MATHQA_OPTION = re.compile(r"\b([A-Ea-e])\s*\)\s*(.*?)(?=\s*,\s*[A-Ea-e]\s*\)|$)", re.DOTALL)


def _unlisted(body: str) -> str:
    """Options written as a Python list literal (``['A ) 2 : 3', 'B ) 4 : 5']``, as 47 MathQA records have
    them) as the usual comma-separated text (``A ) 2 : 3 , B ) 4 : 5``); any other text unchanged."""
    stripped = body.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return body
    try:
        items = ast.literal_eval(stripped)
    except (ValueError, SyntaxError):
        return body
    if isinstance(items, list) and all(isinstance(item, str) for item in items):
        return " , ".join(items)
    return body


class LetterChoiceTask(ReferenceTask):
    """A math problem with lettered options (AQuA, MathQA); the answer is a letter A-E.

    reference: the first capital A-E anywhere in the response (AQuA's rule), exact match.
    robust: "answer is (D)" and the like (see :func:`llm_adapters.scoring.robust_letter`); failing that, an
    option named by its value ("The answer is 2.65") or its text; case-insensitive match.
    """

    suite = "math"
    max_new_tokens = 256
    choices = ("A", "B", "C", "D", "E")
    #: the text that introduces the options in the instruction
    options_marker: ClassVar[str] = "Answer Choices:"
    option_pattern: ClassVar[re.Pattern[str]] = _AQUA_OPTION

    def options(self, example: Example) -> list[Option]:
        text = example.instruction
        at = text.rfind(self.options_marker)
        if at < 0:
            return [Option(c, c) for c in self.choices]
        found = self.option_pattern.findall(_unlisted(text[at + len(self.options_marker) :]))
        return [Option(letter.upper(), body.strip()) for letter, body in found] or [Option(c, c) for c in self.choices]

    def continuation(self, option: Option, target: str = "label") -> str:
        return option.text if target == "text" else f"The answer is ({option.label})."

    def extract_reference(self, generation: str) -> Prediction:
        return scoring.reference_first_letter(scoring.reference_response(generation))

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        text = scoring.cut_at_end(generation)
        letter = scoring.robust_letter(text)
        if letter is not None or example is None:
            return letter
        options = self.options(example)
        value = scoring.robust_number(text)
        if value is not None:
            same = {o.label for o in options if scoring.numbers_match(value, o.text)}
            if len(same) == 1:
                return same.pop()
        return scoring.unique_text_match(text, [(o.label, o.text) for o in options])

    def is_correct(self, prediction: Prediction, answer: str, scoring_mode: str = "robust") -> bool:
        if not isinstance(prediction, str):
            return False
        return scoring.labels_match(prediction, answer, case_sensitive=scoring_mode == "reference")


_OPTION_MARK = re.compile(r"\b(Answer|Solution|Option|Ending)\s?(\d)\s*:\s*", re.IGNORECASE)
_FORMAT = re.compile(r"Answer format:\s*([\w/ ]+)", re.IGNORECASE)


class LabelChoiceTask(ReferenceTask):
    """A commonsense multiple-choice question answered with a label (``true``, ``answer3``, ``option1``).

    reference: the first match of the task's case-sensitive label alternation, exact match.
    robust: case-insensitive whole-word labels, "the answer is X" preferred, "Answer 3" read as ``answer3``,
    an option named by its text as a last resort; case-insensitive match.
    The options come from the instruction ("Answer1: ... Answer2: ...", "Answer format: answer1/answer2").
    """

    suite = "commonsense"
    max_new_tokens = 32
    reference_skip_special_tokens = True
    #: the reference scripts' alternation for this data set
    reference_labels: ClassVar[tuple[str, ...]] = ()

    def labels_of(self, example: Example) -> list[str]:
        """The labels this example offers, from its "Answer format:" line (else the task's choices)."""
        fmt = _FORMAT.search(example.instruction)
        if fmt:
            labels = [part.strip().lower() for part in fmt[1].split("/") if part.strip()]
            if labels:
                return labels
        return list(self.choices)

    def allowed_answers(self, example: Example) -> list[str] | None:
        """The labels the record offers (its "Answer format:" line, else the task's choices)."""
        return self.labels_of(example)

    def options(self, example: Example) -> list[Option]:
        text = example.instruction
        fmt = _FORMAT.search(text)
        body = text[: fmt.start()] if fmt else text
        marks = list(_OPTION_MARK.finditer(body))
        texts = {}
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
            texts[f"{m[1].lower()}{m[2]}"] = body[m.end() : end].strip()
        return [Option(label, texts.get(label, label)) for label in self.labels_of(example)]

    def continuation(self, option: Option, target: str = "label") -> str:
        # the training data (commonsense_170k) states answers as "the correct answer is <label>"
        return option.text if target == "text" else f"the correct answer is {option.label}"

    def extract_reference(self, generation: str) -> Prediction:
        return scoring.reference_first_label(scoring.reference_response(generation), self.reference_labels)

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        text = scoring.cut_at_end(generation)
        labels = self.labels_of(example) if example is not None else list(self.choices)
        found = scoring.robust_label(text, labels)
        if found is not None or example is None:
            return found
        return scoring.unique_text_match(text, [(o.label, o.text) for o in self.options(example)])

    def is_correct(self, prediction: Prediction, answer: str, scoring_mode: str = "robust") -> bool:
        if not isinstance(prediction, str):
            return False
        return scoring.labels_match(prediction, answer, case_sensitive=scoring_mode == "reference")
