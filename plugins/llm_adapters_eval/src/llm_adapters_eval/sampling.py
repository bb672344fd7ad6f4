"""Choosing the next token of each row of a batch: the arg-max for greedy rows; for sampled rows temperature, then
top-k, then top-p (nucleus) on the row's own logits and a draw with the row's own ``torch.Generator``, so a seeded
row draws the same tokens alone or in any batch (used by :mod:`llm_adapters_eval.decoding`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .decoding import Sampling


def filter_logits(
    logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor
) -> torch.Tensor:
    """Scores to sample from, one row per logits row: ``logits / temperature``, then every token below the
    ``top_k``-th largest score set to ``-inf`` (ties kept; 0: off), then every token outside the smallest
    most-likely set whose probability reaches ``top_p`` set to ``-inf`` (the most likely token always stays;
    1: off). ``logits``: (rows, vocab) float; the three settings: (rows,) tensors, temperature > 0."""
    scores = logits / temperature.to(logits.dtype).unsqueeze(1)  # (rows, vocab)
    vocab = scores.shape[-1]
    k = top_k.clamp(max=vocab)
    if bool((k > 0).any()):
        kmax = int(k.max())
        largest = torch.topk(scores, kmax, dim=-1).values  # (rows, kmax), descending
        kth = largest.gather(1, (k.clamp(min=1) - 1).unsqueeze(1))  # (rows, 1)
        kth = torch.where(k.unsqueeze(1) > 0, kth, torch.full_like(kth, -math.inf))
        scores = scores.masked_fill(scores < kth, -math.inf)
    nucleus = top_p < 1
    if bool(nucleus.any()):
        ascending, order = torch.sort(scores, dim=-1)  # (rows, vocab)
        below = torch.softmax(ascending, dim=-1).cumsum(dim=-1)  # probability of this token and all less likely
        # the threshold in float64 first, then rounded once to the scores' dtype
        drop = below <= (1 - top_p.to(torch.float64)).to(below.dtype).unsqueeze(1)
        drop &= nucleus.unsqueeze(1)
        drop[:, -1] = False  # the most likely token is always kept
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), -math.inf)
    return scores


def choose(
    logits: torch.Tensor, settings: Sequence[Sampling], generators: Sequence[torch.Generator | None]
) -> list[int]:
    """The next token of each row: the arg-max for greedy rows, a draw from the filtered distribution with the
    row's own generator for the others. ``logits``: (rows, vocab) float32."""
    chosen = logits.argmax(dim=-1)  # (rows,)
    sampled = [i for i, s in enumerate(settings) if not s.greedy]
    if sampled:
        device = logits.device
        settings = [settings[i] for i in sampled]
        scores = filter_logits(
            logits[sampled],
            torch.tensor([s.temperature for s in settings], device=device),
            torch.tensor([s.top_k for s in settings], device=device),
            torch.tensor([s.top_p for s in settings], dtype=torch.float64, device=device),
        )
        probs = torch.softmax(scores, dim=-1)
        for j, i in enumerate(sampled):
            chosen[i] = torch.multinomial(probs[j], 1, generator=generators[i]).squeeze(0)
    return chosen.tolist()


def generators(settings: Sequence[Sampling], device: torch.device) -> list[torch.Generator | None]:
    """One generator per seeded sampled row (None for greedy or unseeded rows: torch's default generator)."""
    gens: list[torch.Generator | None] = []
    for s in settings:
        gens.append(torch.Generator(device=device).manual_seed(s.seed) if s.seed is not None and not s.greedy else None)
    return gens
