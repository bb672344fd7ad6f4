"""Prompt templates: one registry shared by training, evaluation and generation.

A template turns a record ``(instruction, input, output)`` into text:

* ``template.prompt(instruction, input)`` is what the model sees at inference time;
* ``template.render(instruction, input, output)`` is the full training text, always
  ``prompt(instruction, input) + output``, so the prompt is an exact prefix of the training text (that is
  what makes masking the prompt's tokens exact).

Built-in templates:

``alpaca``
    A clean Alpaca layout without stray whitespace (the default, :data:`DEFAULT_TEMPLATE`).
``alpaca-reference``
    The reference system's *training* template, byte for byte: its header ends in two spaces (one with an
    input), each line is indented by 16 spaces and the blank lines between sections hold 16 spaces
    (seed-reference section 3).
``alpaca-reference-eval``
    The reference system's *evaluation* template (seed-reference section 4.2): one trailing space after the
    header and truly empty blank lines. It differs from the training template, as it did in the reference;
    use it to reproduce the reference's evaluation protocol.
``chat``
    The tokenizer's own chat template (``tokenizer.apply_chat_template``): the instruction (and input, after
    a blank line) is the user's message, the output the assistant's reply. It needs a tokenizer: call
    ``get_template("chat").bind(tokenizer)`` (or pass ``tokenizer=`` to :func:`get_template`); the unbound
    template raises on use.

Templates are plain data; :func:`register_template` adds more (a name already taken is an error).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

DEFAULT_TEMPLATE = "alpaca"

_INDENT = " " * 16


@dataclass(frozen=True)
class Template:
    """A prompt layout. ``with_input`` / ``without_input`` are ``str.format`` strings with the fields
    ``{instruction}`` and ``{input}``; ``response_marker`` is the text after which the response starts
    (used by evaluations that cut a decoded generation at the marker)."""

    name: str
    description: str
    with_input: str
    without_input: str
    response_marker: str = "### Response:"

    @property
    def needs_tokenizer(self) -> bool:
        return False

    def prompt(self, instruction: str, input: str = "") -> str:  # noqa: A002 - the data's field name
        """The text the model sees at inference time (the training text without the output)."""
        layout = self.with_input if input else self.without_input
        return layout.format(instruction=instruction, input=input)

    def render(self, instruction: str, input: str = "", output: str = "") -> str:  # noqa: A002
        """The full training text: ``prompt(instruction, input) + output`` (no EOS; tokenisation adds it)."""
        return self.prompt(instruction, input) + output

    def bind(self, tokenizer: Any) -> Template:
        """Text templates need no tokenizer: returns ``self``."""
        return self


@dataclass(frozen=True)
class ChatTemplate(Template):
    """The tokenizer's chat template. ``bind(tokenizer)`` returns a usable copy."""

    tokenizer: Any = None
    system: str | None = None

    @property
    def needs_tokenizer(self) -> bool:
        return True

    def bind(self, tokenizer: Any) -> ChatTemplate:
        if getattr(tokenizer, "chat_template", None) is None:
            name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)
            raise ValueError(f"template {self.name!r}: tokenizer {name!r} has no chat template")
        return replace(self, tokenizer=tokenizer)

    def prompt(self, instruction: str, input: str = "") -> str:  # noqa: A002
        if self.tokenizer is None:
            raise ValueError(
                f"template {self.name!r} needs a tokenizer: use get_template({self.name!r}).bind(tokenizer)"
            )
        content = f"{instruction}\n\n{input}" if input else instruction
        messages = [{"role": "user", "content": content}]
        if self.system is not None:
            messages.insert(0, {"role": "system", "content": self.system})
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)


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

_TEMPLATES: dict[str, Template] = {t.name: t for t in (ALPACA, ALPACA_REFERENCE, ALPACA_REFERENCE_EVAL, CHAT)}


def templates() -> dict[str, Template]:
    """Every registered template by name (a copy)."""
    return dict(_TEMPLATES)


def get_template(name: str = DEFAULT_TEMPLATE, *, tokenizer: Any = None) -> Template:
    """The template called ``name``; with ``tokenizer``, bound to it (needed by ``chat``)."""
    try:
        template = _TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(_TEMPLATES))
        raise KeyError(f"unknown prompt template {name!r} (known: {known})") from None
    return template.bind(tokenizer) if tokenizer is not None else template


def register_template(template: Template) -> None:
    """Add a template; its name must be new."""
    if template.name in _TEMPLATES:
        raise ValueError(f"a prompt template named {template.name!r} is already registered")
    _TEMPLATES[template.name] = template
