"""Tiny random models for tests, built from transformers configs (no download, seeded)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM

from ..family import ModelFamily


def tiny_model_from_config(config_kwargs: dict[str, Any], *, seed: int = 0, device: str = "cpu") -> nn.Module:
    """Build a seeded random causal LM from ``AutoConfig.for_model(**config_kwargs)`` in eval mode."""
    kwargs = dict(config_kwargs)
    model_type = kwargs.pop("model_type")
    config = AutoConfig.for_model(model_type, **kwargs)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config)
    model.eval()
    return model


def tiny_model(family: ModelFamily | str, *, seed: int = 0) -> nn.Module:
    """A tiny random model of ``family`` (a family object or the name of an installed family)."""
    if isinstance(family, str):
        from ..registry import model_families

        family = model_families()[family]
    if not family.tiny_config:
        raise ValueError(f"model family {family.name!r} declares no tiny_config")
    return tiny_model_from_config(family.tiny_config, seed=seed)


def tiny_tokenizer() -> Any:
    """A character-level tokenizer (printable ASCII and newline; ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2,
    ``<unk>`` 3; 100 tokens) built in-process, so tests need no file and no download. It adds ``<s>`` in front
    of every text, as LLaMA tokenizers do."""
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(specials + chars)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
