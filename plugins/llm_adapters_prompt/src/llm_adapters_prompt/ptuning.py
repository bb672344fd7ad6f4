"""P-tuning (Liu et al., 2021, "GPT Understands, Too").

The virtual tokens are the output of a trained prompt encoder over learned input embeddings
``E: (nv, hidden)``, prepended to the input as in prompt tuning (:mod:`llm_adapters_prompt.virtual`)::

    mlp:   P = W3 relu(W2 relu(W1 E + b1) + b2) + b3                W1: (h, hidden), W2: (h, h), W3: (hidden, h)
    lstm:  H = BiLSTM(E)                                            H: (nv, 2h), encoder_num_layers layers
           P = W2 relu(W1 H + b1) + b2                              W1: (2h, 2h), W2: (hidden, 2h)

``h`` is ``encoder_hidden_size`` (default: the model's hidden size). The encoder runs once per fresh
forward over the whole prompt (the LSTM sees the nv virtual tokens as one sequence).
"""

from __future__ import annotations

import torch
from torch import nn

from .adapter_types import PTuning as PTuning  # re-exported: the type moved there
from .config import PTuningConfig
from .virtual import VirtualTokenAdapter


class PromptEncoder(nn.Module):
    """``forward() -> (nv, hidden)``: the P-tuning prompt encoder over its own input embeddings."""

    def __init__(self, config: PTuningConfig, hidden: int) -> None:
        super().__init__()
        h = config.encoder_hidden_size or hidden
        self.kind = config.encoder
        self.embedding = nn.Embedding(config.num_virtual_tokens, hidden)  # (nv, hidden)
        self.lstm: nn.LSTM | None = None
        if config.encoder == "lstm":
            self.lstm = nn.LSTM(
                input_size=hidden,
                hidden_size=h,
                num_layers=config.encoder_num_layers,
                dropout=config.encoder_dropout if config.encoder_num_layers > 1 else 0.0,
                bidirectional=True,
                batch_first=True,
            )
            self.head = nn.Sequential(nn.Linear(2 * h, 2 * h), nn.ReLU(), nn.Linear(2 * h, hidden))
        else:
            self.head = nn.Sequential(nn.Linear(hidden, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, hidden))

    def forward(self) -> torch.Tensor:
        x = self.embedding.weight  # (nv, hidden)
        if self.lstm is not None:
            x = self.lstm(x.unsqueeze(0))[0].squeeze(0)  # (1, nv, hidden) -> (nv, 2h)
        return self.head(x)  # (nv, hidden)


class PTuningAdapter(VirtualTokenAdapter):
    """The model-level module of a ``ptuning`` adapter."""

    def __init__(self, config: PTuningConfig, hidden: int) -> None:
        super().__init__("ptuning", config.num_virtual_tokens)
        self.encoder = PromptEncoder(config, hidden)

    def prompt_table(self) -> torch.Tensor:
        return self.encoder()  # (nv, hidden)
