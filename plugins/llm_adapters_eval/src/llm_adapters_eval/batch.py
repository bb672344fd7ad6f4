"""The rows that :mod:`llm_adapters_eval.decoding` runs together: their KV cache and attention mask, dropping the
rows that finished and appending rows that join (left-padded to a common length)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .model_calls import pad_left, select_rows


@dataclass
class RunningBatch:
    """The rows being decoded together: their indices, the KV cache, the attention mask over the cached
    columns plus the column of the next input, each row's last position and its next input token."""

    live: list[int]
    cache: Any
    mask: torch.Tensor  # (rows, cached + 1), left-padded
    last: torch.Tensor  # (rows, 1): the position of each row's last cached token
    next_ids: torch.Tensor  # (rows, 1)
    padded: bool  # whether the mask is passed (as transformers does: not when nothing was padded)

    def keep(self, keep: list[int]) -> RunningBatch | None:
        """Only the rows at ``keep`` (positions in ``live``); None when none is left."""
        if not keep:
            return None
        if len(keep) < len(self.live):
            index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
            select_rows(self.cache, index)
            self.mask, self.last, self.next_ids = self.mask[index], self.last[index], self.next_ids[index]
            self.live = [self.live[at] for at in keep]
        return self

    def mergeable(self) -> bool:
        """Whether other rows can join this cache: plain dynamic layers, all filled, holding exactly the
        columns the mask describes (no sliding windows, no virtual tokens of prompt-based adapters)."""
        from transformers.cache_utils import DynamicLayer

        layers = getattr(self.cache, "layers", None)
        return (
            bool(layers)
            and all(type(layer) is DynamicLayer and layer.is_initialized for layer in layers)
            and self.cache.get_seq_length() == self.mask.shape[1] - 1
        )

    def merge(self, other: RunningBatch) -> RunningBatch:
        """This batch with ``other``'s rows appended; the shorter one is left-padded (zeros under a zero mask)."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        mine, theirs = width - self.mask.shape[1], width - other.mask.shape[1]
        for a, b in zip(self.cache.layers, other.cache.layers, strict=True):
            a.keys = torch.cat([pad_left(a.keys, mine, dim=-2), pad_left(b.keys, theirs, dim=-2)])
            a.values = torch.cat([pad_left(a.values, mine, dim=-2), pad_left(b.values, theirs, dim=-2)])
        self.mask = torch.cat([pad_left(self.mask, mine, dim=1), pad_left(other.mask, theirs, dim=1)])
        self.last = torch.cat([self.last, other.last])
        self.next_ids = torch.cat([self.next_ids, other.next_ids])
        self.live = self.live + other.live
        self.padded = self.padded or other.padded or mine > 0 or theirs > 0
        return self
