"""The commonsense reasoning suite: BoolQ, PIQA, SIQA, HellaSwag, WinoGrande, ARC-e, ARC-c, OpenBookQA.

Every record's instruction ends with "Answer format: label1/label2/..." and its answer is one label; the
training data (commonsense_170k) answers "the correct answer is <label>".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from llm_adapters import hookimpl
from llm_adapters.task import Example, Prediction, Task

from . import scoring
from .kinds import LabelChoiceTask

_ANSWERS = tuple(f"answer{i}" for i in range(1, 6))


class BoolQ(LabelChoiceTask):
    """BoolQ. robust also reads a reply that starts with "yes" / "no" as true / false."""

    name = "boolq"
    directory = "boolq"
    display_name = "BoolQ"
    description = "Yes/no questions answered true or false (3270)."
    choices = ("true", "false")
    reference_labels = ("true", "false")

    def extract_robust(self, generation: str, example: Example | None = None) -> Prediction:
        found = super().extract_robust(generation, example)
        if found is None:
            lead = re.match(r"\W*(yes|no)\b", scoring.cut_at_end(generation), re.IGNORECASE)
            if lead:
                return "true" if lead[1].lower() == "yes" else "false"
        return found


class PIQA(LabelChoiceTask):
    name = "piqa"
    directory = "piqa"
    display_name = "PIQA"
    description = "Physical commonsense: pick solution1 or solution2 (1838)."
    choices = ("solution1", "solution2")
    reference_labels = ("solution1", "solution2")


class SIQA(LabelChoiceTask):
    name = "siqa"
    aliases = ("social_i_qa", "social-i-qa", "socialiqa")
    directory = "social_i_qa"
    display_name = "SIQA"
    description = "Social commonsense: pick answer1-answer3 (1954)."
    choices = _ANSWERS[:3]
    reference_labels = _ANSWERS


class HellaSwag(LabelChoiceTask):
    name = "hellaswag"
    directory = "hellaswag"
    display_name = "HellaSwag"
    description = "Pick the ending (ending1-ending4) that completes the sentence."
    choices = ("ending1", "ending2", "ending3", "ending4")
    reference_labels = choices


class WinoGrande(LabelChoiceTask):
    name = "winogrande"
    directory = "winogrande"
    display_name = "WinoGrande"
    description = "Fill in the blank: option1 or option2 (1267)."
    choices = ("option1", "option2")
    reference_labels = choices


class ARCEasy(LabelChoiceTask):
    name = "arc-easy"
    aliases = ("arc-e", "arc_easy", "arce")
    directory = "ARC-Easy"
    display_name = "ARC-e"
    description = "Grade-school science questions, easy set: answer1-answer4 (a few answer5) (2376)."
    choices = _ANSWERS[:4]
    reference_labels = _ANSWERS


class ARCChallenge(LabelChoiceTask):
    name = "arc-challenge"
    aliases = ("arc-c", "arc_challenge", "arcc")
    directory = "ARC-Challenge"
    display_name = "ARC-c"
    description = "Grade-school science questions, challenge set: answer1-answer4 (a few answer5) (1172)."
    choices = _ANSWERS[:4]
    reference_labels = _ANSWERS


class OpenBookQA(LabelChoiceTask):
    name = "openbookqa"
    aliases = ("obqa",)
    directory = "openbookqa"
    display_name = "OBQA"
    description = "Open-book science questions: answer1-answer4 (500)."
    choices = _ANSWERS[:4]
    reference_labels = _ANSWERS


TASKS: tuple[type[Task], ...] = (BoolQ, PIQA, SIQA, HellaSwag, WinoGrande, ARCEasy, ARCChallenge, OpenBookQA)


@hookimpl
def register_tasks(register: Callable[[type[Task] | Task], None]) -> None:
    for task in TASKS:
        register(task())
