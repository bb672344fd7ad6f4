"""Batched generation: left padding with masks gives each prompt exactly its one-at-a-time tokens; EOS
stopping, eval mode, the KV cache, input order, streaming."""

from __future__ import annotations

import pytest
import torch

from llm_adapters_eval.generation import Generated, GenerationSettings, generate, stream

from .helpers import char_tokenizer, tiny_llama

PROMPTS = [
    "What is 3 + 4?",
    "A much longer prompt about apples, pears and the number of baskets: 12.",
    "x",
    "Tom has 5 pens.",
    "Solve: 17 - 9 = ?",
]


def _alone(model, tok, prompt: str, max_new_tokens: int, num_beams: int = 1) -> list[int]:
    """Plain transformers, one prompt, no padding: the independent reference."""
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    saved, model.generation_config.eos_token_id = model.generation_config.eos_token_id, None  # run the full budget
    try:
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=num_beams,
            pad_token_id=0,
        )
    finally:
        model.generation_config.eos_token_id = saved
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("num_beams", [1, 2])
def test_batched_left_padded_equals_one_at_a_time(num_beams: int) -> None:
    model, tok = tiny_llama(), char_tokenizer()
    settings = GenerationSettings(max_new_tokens=12, num_beams=num_beams, batch_size=5, stop_at_eos=False)
    batched = generate(model, tok, PROMPTS, settings)
    single = generate(model, tok, PROMPTS, GenerationSettings(12, num_beams, batch_size=1, stop_at_eos=False))
    for prompt, b, s in zip(PROMPTS, batched, single, strict=True):
        expected = _alone(model, tok, prompt, 12, num_beams)
        assert b.token_ids == expected, prompt
        assert s.token_ids == expected, prompt
        assert b.text == tok.decode(expected)
    assert tok.padding_side == "right", "the tokenizer's padding side is restored"


def test_results_come_back_in_input_order_with_uneven_batches() -> None:
    model, tok = tiny_llama(seed=3), char_tokenizer()
    out = generate(model, tok, PROMPTS, GenerationSettings(max_new_tokens=6, batch_size=2, stop_at_eos=False))
    assert [o.token_ids for o in out] == [_alone(model, tok, p, 6) for p in PROMPTS]


def test_stops_at_eos_and_drops_it() -> None:
    model, tok = tiny_llama(seed=1), char_tokenizer()
    free = _alone(model, tok, PROMPTS[0], 16)
    # declare the token generated at step 4 the end of sequence: generation must stop right before it
    stop_token = free[4]
    cut = free.index(stop_token)
    model.generation_config.eos_token_id = stop_token
    tok_eos = tok.eos_token_id
    (got,) = generate(model, tok, PROMPTS[:1], GenerationSettings(max_new_tokens=16))
    assert got == Generated(text=tok.decode(free[:cut]), token_ids=free[:cut], stopped_at_eos=True)
    (kept,) = generate(model, tok, PROMPTS[:1], GenerationSettings(max_new_tokens=16, stop_at_eos=False))
    assert kept.token_ids == free and not kept.stopped_at_eos, "without EOS stopping the full budget is kept"
    assert kept.text == tok.decode(free)
    assert tok.eos_token_id == tok_eos


def test_eval_mode_during_generation_and_mode_restored() -> None:
    tok = char_tokenizer()
    model = tiny_llama(attention_dropout=0.5)
    reference = generate(model, tok, PROMPTS, GenerationSettings(max_new_tokens=8, stop_at_eos=False))
    model.train()
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(m.training))
    again = generate(model, tok, PROMPTS, GenerationSettings(max_new_tokens=8, stop_at_eos=False))
    hook.remove()
    assert seen and not any(seen), "dropout must be off while generating"
    assert model.training, "the caller's mode is restored"
    assert [g.token_ids for g in again] == [g.token_ids for g in reference]


def test_uses_the_kv_cache() -> None:
    model, tok = tiny_llama(), char_tokenizer()
    lengths = []
    hook = model.register_forward_pre_hook(
        lambda m, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    generate(model, tok, PROMPTS[:2], GenerationSettings(max_new_tokens=6, stop_at_eos=False))
    hook.remove()
    assert lengths[0] > 1 and lengths[1:] == [1] * 5, "after the prompt, one new token per step"


def test_progress_callback_and_empty_input() -> None:
    model, tok = tiny_llama(), char_tokenizer()
    done: list[int] = []
    generate(model, tok, PROMPTS, GenerationSettings(max_new_tokens=2, batch_size=2), progress=done.append)
    assert done == [2, 4, 5]
    assert generate(model, tok, [], GenerationSettings()) == []


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="generation: batch_size must be an integer >= 1, got 0"):
        GenerationSettings(batch_size=0)


def test_stream_hands_out_the_same_text_piece_by_piece() -> None:
    model, tok = tiny_llama(seed=2), char_tokenizer()
    pieces: list[str] = []
    result = stream(model, tok, PROMPTS[1], pieces.append, GenerationSettings(max_new_tokens=10, batch_size=1))
    (batched,) = generate(model, tok, PROMPTS[1:2], GenerationSettings(max_new_tokens=10))
    assert "".join(pieces) == result.text == tok.decode(batched.token_ids, skip_special_tokens=True)
    assert len(pieces) > 1, "text arrives in pieces"
    beams: list[str] = []
    stream(model, tok, PROMPTS[1], beams.append, GenerationSettings(max_new_tokens=10, num_beams=2, batch_size=1))
    assert len(beams) == 1, "beam search hands over the text once"


# position schemes other than LLaMA's rotary embeddings: absolute (GPT-2), learned with an offset (OPT),
# ALiBi (BLOOM), partial rotary (GPT-NeoX); left padding must not shift any of them
OTHER_FAMILIES = {
    "gpt2": {"model_type": "gpt2", "vocab_size": 128, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 256},
    "opt": {
        "model_type": "opt",
        "vocab_size": 128,
        "hidden_size": 32,
        "ffn_dim": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 256,
        "word_embed_proj_dim": 32,
    },
    "bloom": {"model_type": "bloom", "vocab_size": 128, "hidden_size": 32, "n_layer": 2, "n_head": 4},
    "gpt_neox": {
        "model_type": "gpt_neox",
        "vocab_size": 128,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 256,
    },
}


@pytest.mark.parametrize("family", sorted(OTHER_FAMILIES))
def test_batched_equals_one_at_a_time_for_other_position_schemes(family: str) -> None:
    from llm_adapters.testing import tiny_model_from_config

    config = dict(OTHER_FAMILIES[family], bos_token_id=2, eos_token_id=3, pad_token_id=0)
    model, tok = tiny_model_from_config(config, seed=0), char_tokenizer()
    settings = GenerationSettings(max_new_tokens=8, batch_size=len(PROMPTS), stop_at_eos=False)
    batched = generate(model, tok, PROMPTS, settings)
    assert [g.token_ids for g in batched] == [_alone(model, tok, p, 8) for p in PROMPTS]
