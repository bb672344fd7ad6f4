"""Chat messages to prompt text, for ``/v1/chat/completions``.

Which layout is used, decided once when the server starts:

* ``--template NAME`` given: that registry template. ``chat`` (a template that needs a tokenizer) means the
  tokenizer's own chat template; a text template (``alpaca``, ...) renders the conversation as below.
* otherwise the tokenizer's chat template when it has one, else the training default (``alpaca``), so an
  adapter trained here sees the layout it was trained on.

A text template knows one instruction and its response, so a conversation is rendered as: the system messages
(joined by blank lines) and a blank line; each earlier user turn with its assistant reply as
``template.render(user, "", reply)`` followed by a blank line; then ``template.prompt(last user message)``.
Such a conversation must start with its system messages, then alternate user / assistant, and end with a user
message; anything else is a 400 that says so.
"""

from __future__ import annotations

from typing import Any

from llm_adapters.errors import ConfigError
from llm_adapters.template import Template, get_template

from .errors import invalid


class ChatFormatter:
    """Turns a request's ``messages`` into the prompt text for one tokenizer."""

    def __init__(self, tokenizer: Any, template: str | None = None) -> None:
        self.tokenizer = tokenizer
        has_own = getattr(tokenizer, "chat_template", None) is not None
        self.template: Template | None = None
        if template is not None:
            chosen = get_template(template)
            if chosen.needs_tokenizer:
                if not has_own:
                    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
                    raise ConfigError(
                        f"--template {template}: the tokenizer {name!r} has no chat template; give a text "
                        "template instead (for example --template alpaca)"
                    )
            else:
                self.template = chosen
        elif not has_own:
            from llm_adapters_templates import DEFAULT_TEMPLATE

            self.template = get_template(DEFAULT_TEMPLATE)

    @property
    def uses_tokenizer_template(self) -> bool:
        return self.template is None

    def describe(self) -> str:
        return "the tokenizer's chat template" if self.template is None else f"the template {self.template.name!r}"

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text for ``messages`` (each ``{"role", "content"}``, roles system / user / assistant)."""
        if self.template is None:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return str(text)
        return _render_text(self.template, messages)


def _render_text(template: Template, messages: list[dict[str, str]]) -> str:
    system: list[str] = []
    i = 0
    while i < len(messages) and messages[i]["role"] == "system":
        system.append(messages[i]["content"])
        i += 1
    turns = messages[i:]
    for j, message in enumerate(turns):
        expected = "user" if j % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise invalid(
                f"messages[{i + j}]",
                f"messages[{i + j}] is a {message['role']!r} message where a {expected!r} one was expected: with "
                f"the template {template.name!r} a conversation is its system messages first, then user and "
                "assistant messages in turn, ending with a user message.",
            )
    if not turns or turns[-1]["role"] != "user":
        raise invalid(
            "messages", f"The last message must be a user message (the template {template.name!r} answers it)."
        )
    parts = ["\n\n".join(system) + "\n\n"] if system else []
    for k in range(0, len(turns) - 1, 2):
        parts.append(template.render(turns[k]["content"], "", turns[k + 1]["content"]) + "\n\n")
    parts.append(template.prompt(turns[-1]["content"]))
    return "".join(parts)
