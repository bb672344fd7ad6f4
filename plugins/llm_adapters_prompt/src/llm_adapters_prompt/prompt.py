"""Prompt tuning (Lester et al., 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning").

The model reads ``nv`` learned embeddings before the real tokens (see :mod:`llm_adapters_prompt.virtual`)::

    inputs_embeds = [P ; embed(input_ids)]        P: (nv, hidden), the only trained parameter

Initialisation: ``random`` draws ``P ~ N(0, 1)`` (``nn.Embedding``'s default, as the reference); ``text``
copies the word embeddings of a text's tokens, repeated or cut to ``nv`` tokens (Lester et al., section 3.2).
The token ids are written into the config when the adapter is created, so a saved adapter loads without the
tokenizer.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from llm_adapters import AdapterType, AttentionDims

from .config import PromptConfig
from .virtual import VirtualTokenAdapter


class PromptTuningAdapter(VirtualTokenAdapter):
    """The model-level module of a ``prompt`` adapter: one embedding table."""

    def __init__(self, config: PromptConfig, hidden: int) -> None:
        super().__init__("prompt", config.num_virtual_tokens)
        self.embedding = nn.Embedding(config.num_virtual_tokens, hidden)  # (nv, hidden), N(0, 1)

    def prompt_table(self) -> torch.Tensor:
        return self.embedding.weight  # (nv, hidden)


def text_token_ids(config: PromptConfig, model: nn.Module) -> list[int]:
    """The ids of ``config.init_text`` under the configured tokenizer (default: the model's own)."""
    name = config.tokenizer_name_or_path or getattr(getattr(model, "config", None), "_name_or_path", None)
    if not name:
        raise ValueError(
            "adapter 'prompt': init='text' needs a tokenizer for init_text: set tokenizer_name_or_path (a local "
            "directory, hub id or embedded model name) or give init_token_ids"
        )
    try:
        from transformers import AutoTokenizer

        from llm_adapters.models import EMBEDDED_MODELS, local_checkpoint

        # embedded models and GGUF files are converted to a directory first; anything else loads as it is
        source = local_checkpoint(name) if name in EMBEDDED_MODELS or name.lower().endswith(".gguf") else name
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # any loading failure becomes one clear message
        raise ValueError(
            f"adapter 'prompt': cannot load the tokenizer {name!r} for init_text ({exc}); set "
            "tokenizer_name_or_path or give init_token_ids"
        ) from None
    ids = tokenizer(config.init_text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"adapter 'prompt': init_text {config.init_text!r} has no tokens")
    return list(ids)


def tile(ids: list[int], count: int) -> list[int]:
    """``ids`` repeated and cut to exactly ``count`` entries."""
    return (ids * math.ceil(count / len(ids)))[:count]


class PromptTuning(AdapterType):
    """``prompt``: learned input embeddings before the real tokens (model-level, not mergeable)."""

    name: ClassVar[str] = "prompt"
    config_class = PromptConfig
    description: ClassVar[str] = "Prompt tuning (Lester et al., 2021): learned embeddings before the input"
    model_level: ClassVar[bool] = True
    mergeable: ClassVar[bool] = False

    def create_model_adapter(  # type: ignore[override]
        self, config: PromptConfig, model: nn.Module, dims: AttentionDims | None
    ) -> PromptTuningAdapter:
        words = model.get_input_embeddings()
        module = PromptTuningAdapter(config, words.embedding_dim)
        if config.init == "text":
            if config.init_token_ids is None:
                config.init_token_ids = text_token_ids(config, model)
            ids = config.init_token_ids
            too_big = [i for i in ids if i >= words.num_embeddings]
            if too_big:
                raise ValueError(
                    f"adapter 'prompt': init_token_ids {too_big[:5]} are outside the vocabulary "
                    f"({words.num_embeddings} tokens)"
                )
            if words.weight.device.type != "meta":
                index = torch.tensor(tile(ids, config.num_virtual_tokens), device=words.weight.device)
                with torch.no_grad():
                    module.embedding.weight.copy_(words.weight[index].float())
        return module
