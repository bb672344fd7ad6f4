"""Tiny seeded LLaMA and GPT-2 models built straight from transformers configs (no model family needed),
shared by the adapter packages' formula tests."""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM


def llama(seed: int = 0, dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).to(dtype).eval()


def gpt2(seed: int = 0) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=64,
        n_embd=32,
        n_inner=48,
        n_layer=2,
        n_head=4,
        n_positions=32,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


def ids(seed: int = 0, shape: tuple[int, int] = (2, 5)) -> torch.Tensor:
    return torch.randint(3, 64, shape, generator=torch.Generator().manual_seed(seed))
