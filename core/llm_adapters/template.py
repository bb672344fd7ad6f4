"""The prompt-template contract: how an instruction record becomes the text a model sees.

A template turns a record ``(instruction, input, output)`` into text:

* ``template.prompt(instruction, input)`` is what the model sees at inference time;
* ``template.render(instruction, input, output)`` is the full training text, always
  ``prompt(instruction, input) + output``, so the prompt is an exact prefix of the training text (that is
  what makes masking the prompt's tokens exact).

:class:`Template` is a text layout; :class:`ChatTemplate` uses the tokenizer's own chat template and must be
bound to a tokenizer first. Templates come from plugins through the ``register_templates`` hook;
:func:`get_template` looks one up by name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


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


def templates() -> dict[str, Template]:
    """Every installed template by name."""
    from .registry import templates as registered

    return registered()


def get_template(name: str, *, tokenizer: Any = None) -> Template:
    """The installed template called ``name``; with ``tokenizer``, bound to it (needed by chat templates)."""
    from .errors import ConfigError
    from .registry import get_registry

    table = get_registry().templates
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        raise ConfigError(
            f"unknown prompt template {name!r}; installed templates: {known}. Templates come from plugin "
            "packages (llm-adapters plugins lists them)"
        )
    template: Template = table[name].value
    return template.bind(tokenizer) if tokenizer is not None else template
