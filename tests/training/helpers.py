"""Test helpers for training: a character-level tokenizer that fits the tiny models' 128-token vocabulary,
small instruction data files, a tiny model saved to disk, and an inline plugin set (the core's probe adapter
and families) for subprocesses."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character (ids 4..103) plus <pad>=0, <unk>=1, <s>=2, </s>=3; no BOS is
    added. Character offsets are exact, which the masking tests rely on."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in string.printable:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()  # decode by concatenating the characters
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    return fast


def records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` short addition records in the reference format."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        out.append({"instruction": f"{a}+{b}?", "input": "", "output": f"{a + b}", "answer": str(a + b)})
    return out


def write_json(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(recs))
    return path


def save_tiny(directory: Path, family: str = "llama", seed: int = 0) -> Path:
    """A tiny model of ``family`` (from the probe plugin's configs) plus the char tokenizer, saved."""
    from llm_adapters.testing import tiny_model_from_config
    from tests.core import probe_plugin

    cfg = {"llama": probe_plugin.TINY_LLAMA, "gpt2": probe_plugin.TINY_GPT2}[family]
    model = tiny_model_from_config(cfg, seed=seed)
    model.save_pretrained(directory)
    char_tokenizer().save_pretrained(directory)
    return directory
