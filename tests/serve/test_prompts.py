"""Chat messages to prompt text: which layout is chosen, a conversation through a text template (expected
strings written out by hand), and the conversations a text template refuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_adapters.errors import ConfigError
from llm_adapters.testing import tiny_tokenizer
from llm_adapters_serve.errors import APIError
from llm_adapters_serve.prompts import ChatFormatter

from .conftest import CHAT_TEMPLATE, plugins

HEADER = "Below is an instruction that describes a task. Write a response that appropriately completes the request."


@pytest.fixture(autouse=True)
def _plugins() -> Iterator[None]:
    with plugins():
        yield


def _tokenizer(chat_template: str | None = None):  # type: ignore[no-untyped-def]
    tok = tiny_tokenizer()
    tok.chat_template = chat_template
    return tok


def test_the_tokenizer_template_by_default_else_alpaca() -> None:
    own = ChatFormatter(_tokenizer(CHAT_TEMPLATE))
    assert own.uses_tokenizer_template and own.describe() == "the tokenizer's chat template"
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "2+2?"},
    ]
    assert own.render(msgs) == "[user] Hi\n[assistant] Hello\n[user] 2+2?\n[assistant] "
    fallback = ChatFormatter(_tokenizer())
    assert fallback.describe() == "the template 'alpaca'"
    assert fallback.render([{"role": "user", "content": "Add 2 and 3."}]) == (
        f"{HEADER}\n\n### Instruction:\nAdd 2 and 3.\n\n### Response:\n"
    )


def test_a_named_template_wins_over_the_tokenizer_one() -> None:
    named = ChatFormatter(_tokenizer(CHAT_TEMPLATE), "alpaca")
    assert not named.uses_tokenizer_template
    conversation = [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2?"},
    ]
    assert named.render(conversation) == (
        "You add numbers.\n\n"
        f"{HEADER}\n\n### Instruction:\n1+1?\n\n### Response:\n2\n\n"
        f"{HEADER}\n\n### Instruction:\n2+2?\n\n### Response:\n"
    )
    assert ChatFormatter(_tokenizer(CHAT_TEMPLATE), "chat").uses_tokenizer_template


def test_template_errors_at_start() -> None:
    with pytest.raises(ConfigError, match="unknown prompt template 'alpacca'"):
        ChatFormatter(_tokenizer(), "alpacca")
    with pytest.raises(ConfigError, match="--template chat: the tokenizer .* has no chat template; give a text"):
        ChatFormatter(_tokenizer(), "chat")


@pytest.mark.parametrize(
    ("messages", "param", "message"),
    [
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            "messages[1]",
            "messages[1] is a 'user' message where a 'assistant' one was expected",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}],
            "messages[1]",
            "messages[1] is a 'system' message where a 'assistant' one was expected",
        ),
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            "messages",
            "The last message must be a user message (the template 'alpaca' answers it).",
        ),
        ([{"role": "system", "content": "s"}], "messages", "The last message must be a user message"),
    ],
)
def test_conversations_a_text_template_refuses(messages: list, param: str, message: str) -> None:
    with pytest.raises(APIError) as info:
        ChatFormatter(_tokenizer(), "alpaca").render(messages)
    assert info.value.status == 400 and info.value.param == param
    assert info.value.message.startswith(message)
