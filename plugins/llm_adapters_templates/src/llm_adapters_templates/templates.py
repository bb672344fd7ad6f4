"""Prompt templates for llm-adapters: a clean Alpaca layout (the default of training and evaluation), the
reference system's training and evaluation templates byte for byte, and the tokenizer's own chat template.

``alpaca``
    A clean Alpaca layout without stray whitespace (the default of training and evaluation).
``alpaca-reference``
    The reference system's *training* template, byte for byte: its header ends in two spaces (one with an
    input), each line is indented by 16 spaces and the blank lines between sections hold 16 spaces.
``alpaca-reference-eval``
    The reference system's *evaluation* template: one trailing space after the header and truly empty blank
    lines. It differs from the training template, as it did in the reference; use it to reproduce the
    reference's evaluation protocol.
``chat``
    The tokenizer's own chat template (``tokenizer.apply_chat_template``): the instruction (and input, after
    a blank line) is the user's message, the output the assistant's reply. It needs a tokenizer:
    ``get_template("chat", tokenizer=tok)``.
"""

from __future__ import annotations

from llm_adapters.template import ChatTemplate, Template

_INDENT = " " * 16

_ALPACA_HEADER = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
_ALPACA_HEADER_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)

ALPACA = Template(
    name="alpaca",
    description="Alpaca layout without stray whitespace (the default).",
    with_input=_ALPACA_HEADER_INPUT + "\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
    without_input=_ALPACA_HEADER + "\n\n### Instruction:\n{instruction}\n\n### Response:\n",
)

# The reference's training template (finetune.py): an indented triple-quoted string, so every line after the
# header starts with 16 spaces and the blank lines between sections hold 16 spaces. The no-input header ends
# with two spaces, the with-input header with one.
ALPACA_REFERENCE = Template(
    name="alpaca-reference",
    description="The reference's training template, byte for byte (16-space indentation, trailing spaces).",
    with_input=_ALPACA_HEADER_INPUT
    + " \n\n"
    + f"{_INDENT}### Instruction:\n{_INDENT}{{instruction}}\n{_INDENT}\n"
    + f"{_INDENT}### Input:\n{_INDENT}{{input}}\n{_INDENT}\n"
    + f"{_INDENT}### Response:\n{_INDENT}",
    without_input=_ALPACA_HEADER
    + "  \n\n"
    + f"{_INDENT}### Instruction:\n{_INDENT}{{instruction}}\n{_INDENT}\n"
    + f"{_INDENT}### Response:\n{_INDENT}",
)

# The reference's evaluation template (evaluate.py): one trailing space after the header, truly empty blank
# lines, the same 16-space indentation. Only the no-input form is pinned down by the reference's test sets (all
# have an empty input); the with-input form follows the same whitespace.
ALPACA_REFERENCE_EVAL = Template(
    name="alpaca-reference-eval",
    description="The reference's evaluation template (one trailing space, empty blank lines).",
    with_input=_ALPACA_HEADER_INPUT
    + " \n\n"
    + f"{_INDENT}### Instruction:\n{_INDENT}{{instruction}}\n\n"
    + f"{_INDENT}### Input:\n{_INDENT}{{input}}\n\n"
    + f"{_INDENT}### Response:\n{_INDENT}",
    without_input=_ALPACA_HEADER
    + " \n\n"
    + f"{_INDENT}### Instruction:\n{_INDENT}{{instruction}}\n\n"
    + f"{_INDENT}### Response:\n{_INDENT}",
)

CHAT = ChatTemplate(
    name="chat",
    description="The tokenizer's chat template (needs a tokenizer: get_template('chat').bind(tokenizer)).",
    with_input="",
    without_input="",
    response_marker="",
)

TEMPLATES: tuple[Template, ...] = (ALPACA, ALPACA_REFERENCE, ALPACA_REFERENCE_EVAL, CHAT)
