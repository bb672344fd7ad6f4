"""Log-likelihood of options against a hand computation, batched or not."""

from __future__ import annotations

import pytest
import torch

from llm_adapters_eval.loglik import OptionScore, choose, continuation_logprobs

from .helpers import char_tokenizer, tiny_llama

PAIRS = [
    ("Q: is ice cold?\nA:", " true"),
    ("Q: is ice cold?\nA:", " false"),
    ("Pick one: answer1 or answer2. The answer is", " answer2"),
    ("x", "y"),
]


def _by_hand(model, tok, context: str, continuation: str) -> float:
    """Sum over the continuation's characters of log softmax(logits)[next char], one sequence, no padding."""
    ctx = tok(context)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    total = 0.0
    for k, token in enumerate(cont):
        row = logits[len(ctx) + k - 1].double()
        total += float(row[token] - torch.logsumexp(row, dim=0))
    return total


@pytest.mark.parametrize("batch_size", [1, 3])
def test_matches_a_hand_computation(batch_size: int) -> None:
    model, tok = tiny_llama(), char_tokenizer()
    scores = continuation_logprobs(model, tok, PAIRS, batch_size=batch_size)
    for (context, continuation), score in zip(PAIRS, scores, strict=True):
        assert score.num_tokens == len(continuation)  # one token per character
        assert score.logprob == pytest.approx(_by_hand(model, tok, context, continuation), abs=1e-4)


def test_choose_sum_mean_and_ties() -> None:
    scores = [OptionScore(-4.0, 4), OptionScore(-3.0, 1), OptionScore(-3.0, 1)]
    assert choose(scores, "sum") == 1  # the first of equal best
    assert choose([OptionScore(-4.0, 8), OptionScore(-3.0, 2)], "mean") == 0
    assert OptionScore(-3.0, 2).mean == -1.5
    with pytest.raises(ValueError, match="normalize must be 'sum' or 'mean', got 'max'"):
        choose(scores, "max")


def test_empty_continuation_is_an_error() -> None:
    with pytest.raises(ValueError, match="the continuation '' has no tokens"):
        continuation_logprobs(tiny_llama(), char_tokenizer(), [("a", "")])
