"""Log-likelihood scoring of multiple-choice options: no generation, no answer extraction.

For a prompt ``c`` and options ``o_1 .. o_k`` the model's choice is the option whose continuation text
``t_j`` is most likely after the prompt:

    score_j = sum_{i=1..|t_j|} log p(t_j[i] | c, t_j[:i])        ("sum")
    score_j / |t_j|                                               ("mean": per token, for texts of unequal length)

The prompt is tokenised as for generation (with the tokenizer's special tokens), the continuation without
special tokens, and the two id lists are concatenated, so the prompt's tokens are the same for every option.
Sequences are right-padded with an attention mask (padding at the end cannot change earlier positions) and
scored in batches, longest first.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .generation import evaluating, pad_id


@dataclass(frozen=True)
class OptionScore:
    """The summed log-probability of one continuation and its number of tokens."""

    logprob: float
    num_tokens: int

    @property
    def mean(self) -> float:
        return self.logprob / max(self.num_tokens, 1)


def continuation_logprobs(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    batch_size: int = 16,
    progress: bool = False,
    description: str = "scoring options",
) -> list[OptionScore]:
    """``log p(continuation | context)`` for every ``(context, continuation)`` pair, in input order."""
    if not pairs:
        return []
    if batch_size < 1:
        raise ValueError(f"log-likelihood scoring: batch_size must be >= 1, got {batch_size}")
    rows: list[tuple[list[int], int]] = []  # (ids, length of the context part)
    for context, continuation in pairs:
        ctx = tokenizer(context)["input_ids"]
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not cont:
            raise ValueError(f"log-likelihood scoring: the continuation {continuation!r} has no tokens")
        if not ctx:  # the first continuation token needs something to be predicted from
            raise ValueError("log-likelihood scoring: the prompt is empty")
        rows.append((list(ctx) + list(cont), len(ctx)))
    pad = pad_id(model, tokenizer)
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]), reverse=True)
    scores: list[OptionScore | None] = [None] * len(rows)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(rows), desc=description, unit="opt", file=sys.stderr, dynamic_ncols=True)
    with evaluating(model):
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(rows[i][0]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)  # (batch, width), right-padded
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):
                seq = rows[i][0]
                ids[r, : len(seq)] = torch.tensor(seq)
                mask[r, : len(seq)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (batch, width, vocab)
            logp = F.log_softmax(logits[:, :-1].float(), dim=-1)  # position t predicts token t + 1
            target = ids[:, 1:].to(device)  # (batch, width - 1)
            token_logp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (batch, width - 1)
            for r, i in enumerate(chunk):
                seq, n_ctx = rows[i]
                # continuation tokens sit at positions n_ctx .. len(seq) - 1, predicted from n_ctx - 1 ..
                span = token_logp[r, n_ctx - 1 : len(seq) - 1]
                scores[i] = OptionScore(float(span.sum()), int(span.numel()))
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return [s for s in scores if s is not None]


def choose(scores: Sequence[OptionScore], normalize: str = "sum") -> int:
    """The index of the best option (the first one on ties) under ``normalize`` (``"sum"`` or ``"mean"``)."""
    if normalize not in ("sum", "mean"):
        raise ValueError(f"log-likelihood scoring: normalize must be 'sum' or 'mean', got {normalize!r}")
    values = [s.logprob if normalize == "sum" else s.mean for s in scores]
    return max(range(len(values)), key=lambda i: (values[i], -i))
