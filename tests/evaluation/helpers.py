"""Test helpers for generation and evaluation: a character-level tokenizer that fits the tiny models'
128-token vocabulary, tiny seeded LLaMA models (float32), and a scripted model whose answers are known."""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models
from torch import nn
from transformers import PreTrainedTokenizerFast

from llm_adapters.testing import tiny_model_from_config
from tests.core import probe_plugin

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
PAD, UNK, BOS, EOS = range(4)


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character (ids 4..103), <pad>=0, <unk>=1, <s>=2, </s>=3; no BOS added."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in string.printable:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()  # characters join without separators
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def tiny_llama(seed: int = 0, **overrides: Any) -> nn.Module:
    """A tiny random LLaMA (2 layers, hidden 32, GQA 4/2 heads, vocab 128) in eval mode, EOS id 3."""
    config = dict(probe_plugin.TINY_LLAMA, max_position_embeddings=1024, pad_token_id=PAD, eos_token_id=EOS)
    config.update(overrides)
    return tiny_model_from_config(config, seed=seed)


def save_tiny(directory: Path, seed: int = 0) -> Path:
    """A tiny LLaMA plus the char tokenizer saved as an ordinary model directory."""
    tiny_llama(seed).save_pretrained(directory)
    char_tokenizer().save_pretrained(directory)
    return directory


class ScriptedLM(nn.Module):
    """A stand-in causal LM for the runner that answers each prompt with ``reply(prompt)`` followed by EOS.

    ``forward`` is one step of a causal LM over a KV cache (what greedy decoding calls): the cache holds the
    token ids seen so far, and the logits put all weight on each row's next scripted token. ``generate`` (what
    beam search calls) takes left-padded batches and returns (batch, prompt + new) ids, like
    ``model.generate``. Both record how they were called: ``forward`` once per prefill."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, reply: Callable[[str], str]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.tokenizer = tokenizer
        self.reply = reply
        self.generation_config = type("GC", (), {"eos_token_id": EOS, "pad_token_id": PAD})()
        self.config = type("Cfg", (), {"_name_or_path": "scripted"})()
        self.calls: list[dict[str, Any]] = []

    def _scripted(self, prompt: str) -> list[int]:
        return self.tokenizer(self.reply(prompt), add_special_tokens=False)["input_ids"] + [EOS]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        use_cache: bool = True,
        **kwargs: Any,
    ) -> Any:
        prefill = cache.get_seq_length() == 0  # a new batch of prompts, left-padded
        if prefill:
            self.calls.append(
                {
                    "step": "prefill",
                    "batch": input_ids.shape[0],
                    "training": self.training,
                    "left_padded": attention_mask is None or bool((attention_mask[:, -1] == 1).all()),
                }
            )
        # layer 0 holds the token ids seen, layer 1 what each column is: 1 prompt, 2 generated, 0 padding
        ids = input_ids[:, None, :, None].float()  # (batch, 1, new, 1)
        kind = torch.where(input_ids == PAD, 0.0, 1.0 if prefill else 2.0)[:, None, :, None]
        seen, _ = cache.update(ids, ids, 0)
        kinds, _ = cache.update(kind, kind, 1)
        logits = torch.full((input_ids.shape[0], 1, len(self.tokenizer)), -1e4)
        for b, (row, what) in enumerate(zip(seen[:, 0, :, 0].long().tolist(), kinds[:, 0, :, 0].tolist(), strict=True)):
            prompt = self.tokenizer.decode([t for t, k in zip(row, what, strict=True) if k == 1])
            reply = self._scripted(prompt)
            logits[b, 0, reply[min(what.count(2), len(reply) - 1)]] = 0.0
        return SimpleNamespace(logits=logits, cache=cache)

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, generation_config: Any) -> torch.Tensor:
        self.calls.append(
            {
                "step": "generate",
                "batch": input_ids.shape[0],
                "training": self.training,
                "left_padded": bool((attention_mask[:, -1] == 1).all()),
                "num_beams": generation_config.num_beams,
                "max_new_tokens": generation_config.max_new_tokens,
                "eos": generation_config.eos_token_id,
            }
        )
        rows = []
        for ids, mask in zip(input_ids, attention_mask, strict=True):
            prompt = self.tokenizer.decode(ids[mask.bool()])
            rows.append(self._scripted(prompt)[:-1][: generation_config.max_new_tokens - 1] + [EOS])
        width = max(len(r) for r in rows)
        new_ids = torch.tensor([r + [PAD] * (width - len(r)) for r in rows])
        return torch.cat([input_ids, new_ids], dim=1)
