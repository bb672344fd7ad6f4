"""The math reasoning suite: AddSub, MultiArith, SingleEq, GSM8K, AQuA, SVAMP, MAWPS, MathQA.

The data sets are those published with LLM-Adapters (``dataset/<Name>/test.json``); the ``output`` field of
their records is a teacher rationale, not gold, so only ``answer`` is scored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from llm_adapters import hookimpl
from llm_adapters.task import Task

from .kinds import _MATHQA_OPTION, LetterChoiceTask, NumericTask


class AddSub(NumericTask):
    name = "addsub"
    directory = "AddSub"
    display_name = "AddSub"
    description = "Addition and subtraction word problems (395)."


class MultiArith(NumericTask):
    name = "multiarith"
    directory = "MultiArith"
    display_name = "MultiArith"
    description = "Multi-step arithmetic word problems (600)."


class SingleEq(NumericTask):
    name = "singleeq"
    directory = "SingleEq"
    display_name = "SingleEq"
    description = "Single-equation word problems (508)."


class GSM8K(NumericTask):
    name = "gsm8k"
    directory = "gsm8k"
    display_name = "GSM8K"
    description = "Grade-school math word problems (1319)."


class SVAMP(NumericTask):
    name = "svamp"
    directory = "SVAMP"
    display_name = "SVAMP"
    description = "Varied one-unknown arithmetic word problems (1000); instruction = body + question."


class MAWPS(NumericTask):
    name = "mawps"
    directory = "mawps"
    display_name = "MAWPS"
    description = "Math word problems (238); some answers are non-integers such as 1.8333333333333335."


class AQuA(LetterChoiceTask):
    name = "aqua"
    directory = "AQuA"
    display_name = "AQuA"
    description = "Algebra questions with five lettered options (254); the answer is a letter A-E."


class MathQA(LetterChoiceTask):
    """MathQA: "{Problem} The options: A ) 38 , B ) 27.675 , ...". The published file upper-cased every
    a-e in the options ("DAtA inADEquAtE"); texts are compared case-insensitively for that reason."""

    name = "mathqa"
    directory = "mathqa"
    display_name = "MathQA"
    description = "Math problems with five lettered options (2985); the answer is a letter A-E."
    options_marker = "The options:"
    option_pattern: re.Pattern[str] = _MATHQA_OPTION


TASKS: tuple[type[Task], ...] = (AddSub, MultiArith, SingleEq, GSM8K, AQuA, SVAMP, MAWPS, MathQA)


@hookimpl
def register_tasks(register: Callable[[type[Task] | Task], None]) -> None:
    for task in TASKS:
        register(task())
