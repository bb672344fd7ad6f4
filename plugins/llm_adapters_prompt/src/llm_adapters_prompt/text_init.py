"""Starting virtual tokens from a real text: the text's token ids, repeated or cut to the prompt length."""

from __future__ import annotations

import math

from torch import nn

from .config import _TextInitConfig


def tile(ids: list[int], count: int) -> list[int]:
    """``ids`` repeated and cut to exactly ``count`` entries."""
    return (ids * math.ceil(count / len(ids)))[:count]


def text_token_ids(config: _TextInitConfig, model: nn.Module) -> list[int]:
    """The ids of ``config.init_text`` under the configured tokenizer (default: the model's own)."""
    adapter = config.type
    name = config.tokenizer_name_or_path or getattr(getattr(model, "config", None), "_name_or_path", None)
    if not name:
        raise ValueError(
            f"adapter {adapter!r}: init='text' needs a tokenizer for init_text: set tokenizer_name_or_path (a local "
            "directory, hub id or embedded model name) or give init_token_ids"
        )
    try:
        from transformers import AutoTokenizer

        from llm_adapters.models import find_source

        # what a model source handles (an embedded model, a GGUF file) becomes a directory first; anything else
        # (a tokenizer directory, a hub id) loads as it is
        found = find_source(name)
        source = found.checkpoint(name) if found is not None else name
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # any loading failure becomes one clear message
        raise ValueError(
            f"adapter {adapter!r}: cannot load the tokenizer {name!r} for init_text ({exc}); set "
            "tokenizer_name_or_path or give init_token_ids"
        ) from None
    ids = tokenizer(config.init_text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"adapter {adapter!r}: init_text {config.init_text!r} has no tokens")
    return list(ids)


def init_ids(config: _TextInitConfig, model: nn.Module) -> list[int]:
    """The ``num_virtual_tokens`` token ids a text initialisation starts from; records the text's ids in
    ``config.init_token_ids`` (so that loading needs no tokenizer) and checks them against the vocabulary."""
    if config.init_token_ids is None:
        config.init_token_ids = text_token_ids(config, model)
    vocab = model.get_input_embeddings().num_embeddings
    outside = [i for i in config.init_token_ids if i >= vocab]
    if outside:
        raise ValueError(
            f"adapter {config.type!r}: init_token_ids {outside[:5]} are outside the vocabulary ({vocab} tokens)"
        )
    return tile(config.init_token_ids, config.num_virtual_tokens)
