"""Prompt tuning and P-tuning: virtual tokens behave as real tokens would, labels / mask / positions are
extended, text initialisation, the prompt encoders against hand-written computations, and export."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import PreTrainedTokenizerFast

from llm_adapters import attach, load_adapter, save_adapter, set_active
from llm_adapters.engine import adapter_parameters
from llm_adapters.engine.targets import MODEL_LEVEL_ATTR
from llm_adapters.testing import tiny_model
from llm_adapters_prompt import prompt_table, save_prompt_table
from llm_adapters_prompt.text_init import tile

from .helpers import FAMILIES, inputs, logits

TABLE_KEY = f"{MODEL_LEVEL_ATTR}.embedding.weight"


def _set(model: nn.Module, key: str, value: torch.Tensor, name: str = "default") -> None:
    with torch.no_grad():
        adapter_parameters(model, name)[key].copy_(value)


# ---- prompt tuning: virtual tokens are tokens ----------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_of_word_embeddings_equals_those_tokens(family: str) -> None:
    """A prompt set to the word embeddings of tokens T gives, on X, the base model's logits and loss for [T ; X]
    (T at positions 0..m-1, X after them; the loss over X only)."""
    model = tiny_model(family)
    m = 3
    prompt_ids = inputs(model, batch=1, length=m, seed=7)[0]
    real = inputs(model, batch=2, length=6, seed=8)
    full = torch.cat([prompt_ids.expand(2, m), real], dim=1)
    labels = torch.cat([torch.full((2, m), -100), real], dim=1)
    with torch.no_grad():
        expected = model(input_ids=full, attention_mask=torch.ones_like(full), labels=labels)
    attach(model, {"type": "prompt", "num_virtual_tokens": m})
    _set(model, TABLE_KEY, model.get_input_embeddings().weight[prompt_ids])
    with torch.no_grad():
        got = model(input_ids=real, attention_mask=torch.ones_like(real), labels=real)
    assert got.logits.shape == (2, 6, model.config.vocab_size)
    torch.testing.assert_close(got.logits, expected.logits[:, m:], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(got.loss, expected.loss, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", ["prompt", "ptuning"])
def test_left_padding_and_cached_generation(family: str, kind: str) -> None:
    model = tiny_model(family)
    attach(model, {"type": kind, "num_virtual_tokens": 2})
    real = inputs(model, batch=1, length=4, seed=3)
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), real], dim=1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
    alone = logits(model, real, torch.ones_like(real))
    torch.testing.assert_close(logits(model, padded, mask)[:, 2:], alone, atol=2e-5, rtol=1e-4)
    kw = {"max_new_tokens": 5, "do_sample": False, "pad_token_id": 0}
    cached = model.generate(input_ids=padded, attention_mask=mask, **kw)
    assert torch.equal(cached, model.generate(input_ids=padded, attention_mask=mask, use_cache=False, **kw))
    assert torch.equal(cached[:, 2:], model.generate(input_ids=real, attention_mask=torch.ones_like(real), **kw))


def test_manual_decoding_continues_from_a_cache_the_model_made() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "prompt", "num_virtual_tokens": 3})
    ids = inputs(model, batch=2, length=6)
    whole = logits(model, ids, torch.ones_like(ids))
    with torch.no_grad():
        first = model(input_ids=ids[:, :5], use_cache=True)
        assert first.cache.get_seq_length() == 3 + 5
        step = model(input_ids=ids[:, 5:], attention_mask=torch.ones_like(ids), cache=first.cache).logits
    torch.testing.assert_close(step[:, -1], whole[:, -1], atol=2e-5, rtol=1e-4)


def test_inputs_embeds_are_accepted() -> None:
    model = tiny_model("gpt2")
    attach(model, {"type": "prompt", "num_virtual_tokens": 3})
    ids = inputs(model)
    with torch.no_grad():
        via_embeds = model(inputs_embeds=model.get_input_embeddings()(ids)).logits
    torch.testing.assert_close(via_embeds, logits(model, ids))


def test_return_dict_false_strips_the_virtual_logits() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "ptuning", "num_virtual_tokens": 3})
    ids = inputs(model)
    with torch.no_grad():
        loss, out_logits = model(input_ids=ids, labels=ids, return_dict=False)[:2]
        as_dict = model(input_ids=ids, labels=ids)
    torch.testing.assert_close(out_logits, as_dict.logits)
    torch.testing.assert_close(loss, as_dict.loss)


@pytest.mark.parametrize("kind", ["prompt", "ptuning"])
def test_training_lowers_the_loss(kind: str) -> None:
    torch.manual_seed(0)
    model = tiny_model("llama")
    attach(model, {"type": kind, "num_virtual_tokens": 4})
    model.train()
    ids = inputs(model, batch=4, length=8)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    for _ in range(30):
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05


# ---- text initialisation -----------------------------------------------------------------------------
def test_text_init_from_token_ids_tiles_the_word_embeddings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model("llama")
    attach(model, {"type": "prompt", "num_virtual_tokens": 5, "init": "text", "init_token_ids": [11, 12]})
    words = model.get_input_embeddings().weight
    table = adapter_parameters(model, "default")[TABLE_KEY]
    torch.testing.assert_close(table, words[[11, 12, 11, 12, 11]], atol=0, rtol=0)
    ids = inputs(model)
    expected = logits(model, ids)
    save_adapter(model, tmp_path / "a")
    fresh = tiny_model("llama")
    load_adapter(fresh, tmp_path / "a")
    torch.testing.assert_close(logits(fresh, ids), expected, atol=0, rtol=0)


def test_tile() -> None:
    assert tile([1, 2, 3], 7) == [1, 2, 3, 1, 2, 3, 1]
    assert tile([1, 2, 3], 2) == [1, 2]


def _word_tokenizer(path) -> PreTrainedTokenizerFast:  # type: ignore[no-untyped-def]
    vocab = {"[UNK]": 0, "solve": 20, "the": 21, "problem": 22}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.save_pretrained(path)
    return fast


def test_text_init_from_a_tokenizer_records_the_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _word_tokenizer(tmp_path / "tok")
    model = tiny_model("gpt2")
    config = {
        "type": "prompt",
        "num_virtual_tokens": 4,
        "init": "text",
        "init_text": "solve the problem",
        "tokenizer_name_or_path": str(tmp_path / "tok"),
    }
    attach(model, config)
    save_adapter(model, tmp_path / "a")
    saved = json.loads((tmp_path / "a" / "adapter_config.json").read_text())["llm_adapters"]["config"]
    assert saved["init_token_ids"] == [20, 21, 22]
    table = adapter_parameters(model, "default")[TABLE_KEY]
    torch.testing.assert_close(table, model.get_input_embeddings().weight[[20, 21, 22, 20]], atol=0, rtol=0)


def test_text_init_errors() -> None:
    model = tiny_model("llama")
    with pytest.raises(ValueError, match=r"adapter 'prompt': init_token_ids \[500\] are outside the vocabulary"):
        attach(model, {"type": "prompt", "init": "text", "init_token_ids": [5, 500]})
    with pytest.raises(ValueError, match="adapter 'prompt': cannot load the tokenizer '/nonexistent/tok'"):
        attach(
            model,
            {"type": "prompt", "init": "text", "init_text": "hi", "tokenizer_name_or_path": "/nonexistent/tok"},
        )
    assert not hasattr(model, MODEL_LEVEL_ATTR)


# ---- P-tuning encoders against hand-written computations ---------------------------------------------------
def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    prefix = f"{MODEL_LEVEL_ATTR}.encoder."
    return {k[len(prefix) :]: v.detach() for k, v in adapter_parameters(model, "default").items()}


def test_mlp_encoder_by_hand() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "ptuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16})
    p = _params(model)
    x = p["embedding.weight"]  # (4, 48)
    h = F.relu(x @ p["head.0.weight"].T + p["head.0.bias"])
    h = F.relu(h @ p["head.2.weight"].T + p["head.2.bias"])
    expected = h @ p["head.4.weight"].T + p["head.4.bias"]  # (4, 48)
    torch.testing.assert_close(prompt_table(model), expected)


def _lstm_direction(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """One LSTM direction over rows of x, by the textbook equations (gates i, f, g, o)."""
    hidden = w_hh.shape[1]
    h, c, out = torch.zeros(hidden), torch.zeros(hidden), []
    for row in x:
        i, f, g, o = (w_ih @ row + w_hh @ h + b).chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out)


def test_lstm_encoder_by_hand() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "ptuning", "num_virtual_tokens": 5, "encoder": "lstm", "encoder_hidden_size": 6})
    p = _params(model)
    x = p["embedding.weight"]  # (5, 48)
    layer0 = []
    for suffix in ("", "_reverse"):
        w_ih, w_hh = p[f"lstm.weight_ih_l0{suffix}"], p[f"lstm.weight_hh_l0{suffix}"]
        b = p[f"lstm.bias_ih_l0{suffix}"] + p[f"lstm.bias_hh_l0{suffix}"]
        seq = x if not suffix else x.flip(0)
        out = _lstm_direction(seq, w_ih, w_hh, b)
        layer0.append(out if not suffix else out.flip(0))
    x1 = torch.cat(layer0, dim=1)  # (5, 12): the input of the second layer
    layer1 = []
    for suffix in ("", "_reverse"):
        w_ih, w_hh = p[f"lstm.weight_ih_l1{suffix}"], p[f"lstm.weight_hh_l1{suffix}"]
        b = p[f"lstm.bias_ih_l1{suffix}"] + p[f"lstm.bias_hh_l1{suffix}"]
        seq = x1 if not suffix else x1.flip(0)
        out = _lstm_direction(seq, w_ih, w_hh, b)
        layer1.append(out if not suffix else out.flip(0))
    hidden = torch.cat(layer1, dim=1)  # (5, 12)
    expected = F.relu(hidden @ p["head.0.weight"].T + p["head.0.bias"]) @ p["head.2.weight"].T + p["head.2.bias"]
    torch.testing.assert_close(prompt_table(model), expected, atol=1e-5, rtol=1e-4)


def test_ptuning_forward_equals_prompt_tuning_with_its_table() -> None:
    model = tiny_model("phi")
    attach(model, {"type": "ptuning", "num_virtual_tokens": 3, "encoder": "lstm"}, name="pt")
    table = prompt_table(model, "pt")
    ids = inputs(model)
    expected = logits(model, ids)
    attach(model, {"type": "prompt", "num_virtual_tokens": 3}, name="plain")
    _set(model, TABLE_KEY, table, name="plain")
    set_active(model, ["plain"])
    torch.testing.assert_close(logits(model, ids), expected, atol=2e-5, rtol=1e-4)


# ---- export ----------------------------------------------------------------------------------------------
def test_save_prompt_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model("gptj")
    attach(model, {"type": "prefix", "num_virtual_tokens": 3, "prefix_projection": True})
    path = save_prompt_table(model, tmp_path / "prefix.safetensors")
    saved = load_file(str(path))["prompt_embeddings"]
    dims = (model.config.n_layer, 2, model.config.n_head, model.config.n_embd // model.config.n_head)
    assert saved.shape == (3, dims[0] * dims[1] * dims[2] * dims[3])
    torch.testing.assert_close(saved, prompt_table(model))
    with pytest.raises(ValueError, match="no prompt-based adapter named 'other'"):
        prompt_table(model, "other")
