"""Prompt tuning (Lester et al., 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning").

The model reads ``nv`` learned embeddings before the real tokens (see :mod:`llm_adapters_prompt.virtual`)::

    inputs_embeds = [P ; embed(input_ids)]        P: (nv, hidden), the only trained parameter

Initialisation: ``random`` draws ``P ~ N(0, 1)`` (``nn.Embedding``'s default, as the reference); ``text``
copies the word embeddings of a text's tokens, repeated or cut to ``nv`` tokens (Lester et al., section 3.2).
The token ids are written into the config when the adapter is created, so a saved adapter loads without the
tokenizer.
"""

from __future__ import annotations

import torch
from torch import nn

from .adapter_types import PromptTuning as PromptTuning  # re-exported: the type moved there
from .config import PromptConfig
from .virtual import VirtualTokenAdapter


class PromptTuningAdapter(VirtualTokenAdapter):
    """The model-level module of a ``prompt`` adapter: one embedding table."""

    def __init__(self, config: PromptConfig, hidden: int) -> None:
        super().__init__("prompt", config.num_virtual_tokens)
        self.embedding = nn.Embedding(config.num_virtual_tokens, hidden)  # (nv, hidden), N(0, 1)

    def prompt_table(self) -> torch.Tensor:
        return self.embedding.weight  # (nv, hidden)
