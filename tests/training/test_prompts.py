"""The prompt templates, checked against hand-written bytes."""

from __future__ import annotations

import pytest

from llm_adapters import hookimpl
from llm_adapters.errors import ConfigError, PluginConflictError
from llm_adapters.template import Template, get_template, templates
from llm_adapters.testing import use_plugins
from llm_adapters_templates import DEFAULT_TEMPLATE
from llm_adapters_templates.templates import TEMPLATES

S16 = " " * 16


def test_reference_training_template_without_input_byte_for_byte() -> None:
    # written out as the reference's indented f-string renders it
    expected = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "  \n"
        "\n"
        "                ### Instruction:\n"
        "                Add 2 and 3.\n"
        "                \n"
        "                ### Response:\n"
        "                \nA: 2 + 3 = 5. The answer is 5."
    )
    t = get_template("alpaca-reference")
    assert t.render("Add 2 and 3.", "", "\nA: 2 + 3 = 5. The answer is 5.") == expected


def test_reference_training_template_with_input() -> None:
    expected = (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request. \n\n"
        f"{S16}### Instruction:\n{S16}Sum these.\n{S16}\n"
        f"{S16}### Input:\n{S16}2, 3\n{S16}\n"
        f"{S16}### Response:\n{S16}5"
    )
    assert get_template("alpaca-reference").render("Sum these.", "2, 3", "5") == expected


def test_reference_eval_template_differs_in_whitespace() -> None:
    expected = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        " \n\n"
        f"{S16}### Instruction:\n{S16}Q?\n\n"
        f"{S16}### Response:\n{S16}"
    )
    assert get_template("alpaca-reference-eval").prompt("Q?") == expected
    assert get_template("alpaca-reference").prompt("Q?") != expected


def test_clean_alpaca_is_default_and_prompt_is_prefix_of_render() -> None:
    assert DEFAULT_TEMPLATE == "alpaca"
    t = get_template(DEFAULT_TEMPLATE)
    assert t.prompt("Q?") == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nQ?\n\n### Response:\n"
    )
    assert t.prompt("Q?", "ctx").endswith("### Instruction:\nQ?\n\n### Input:\nctx\n\n### Response:\n")
    for name, tmpl in templates().items():
        if tmpl.needs_tokenizer:
            continue
        full = tmpl.render("Q {x}?", "in", "out")  # braces in the data are kept literally
        assert full == tmpl.prompt("Q {x}?", "in") + "out", name
        assert "Q {x}?" in full


class _ChatTok:
    chat_template = "fake"
    name_or_path = "fake"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):  # type: ignore[no-untyped-def]
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"


def test_chat_template_needs_a_tokenizer() -> None:
    t = get_template("chat")
    with pytest.raises(ValueError, match=r"template 'chat' needs a tokenizer"):
        t.prompt("hi")
    bound = t.bind(_ChatTok())
    assert bound.prompt("hi", "there") == "<user>hi\n\nthere</user><assistant>"
    assert get_template("chat", tokenizer=_ChatTok()).render("hi", "", "ok") == "<user>hi</user><assistant>ok"

    class NoChat:
        chat_template = None
        name_or_path = "plain"

    with pytest.raises(ValueError, match=r"tokenizer 'plain' has no chat template"):
        t.bind(NoChat())


def test_unknown_and_duplicate_names() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown prompt template 'nope'; installed templates: alpaca, alpaca-reference"
    ):
        get_template("nope")

    class Duplicate:
        @hookimpl
        def register_templates(self, register):
            register(Template("alpaca", "dup", "{instruction}", "{instruction}"))

    class Shipped:
        @hookimpl
        def register_templates(self, register):
            for t in TEMPLATES:
                register(t)

    with use_plugins(Shipped(), Duplicate()):
        with pytest.raises(PluginConflictError, match=r"template 'alpaca' is registered by both"):
            get_template("alpaca")
