"""Prefix tuning: parameter counts, cache geometry per family, the math against the model's own cache,
padding, positions, generation with and without the cache, composition, and clear errors."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, DynamicCache, LlamaConfig

from llm_adapters import (
    attach,
    detach,
    load_adapter,
    model_families,
    save_adapter,
    set_active,
    trainable_parameters,
)
from llm_adapters.engine import adapter_parameters
from llm_adapters.testing import tiny_model, tiny_model_from_config, use_plugins
from llm_adapters_prompt import plugin
from llm_adapters_prompt.cache import PrefixCache
from llm_adapters_prompt.inputs import takes_positions

from .helpers import FAMILIES, inputs, logits


def _meta_llama(hidden: int, inter: int, layers: int, heads: int, kv: int | None = None, vocab: int = 32000):
    config = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv or heads,
        vocab_size=vocab,
    )
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


# ---- parameter counts (seed reference, section 1.5) -------------------------------------------------
@pytest.mark.parametrize(
    ("size", "nv", "expected", "percent"),
    [
        ("7b", 10, 2_621_440, 0.04),  # the reference's "Prefix, nv=10" on LLaMA-7B: 2.62M = 0.04%
        ("7b", 30, 7_864_320, 0.12),
        ("13b", 10, 4_096_000, 0.03),
        ("13b", 30, 12_288_000, 0.09),
    ],
)
def test_llama_counts_equal_the_reference(size: str, nv: int, expected: int, percent: float) -> None:
    model = _meta_llama(4096, 11008, 32, 32) if size == "7b" else _meta_llama(5120, 13824, 40, 40)
    attach(model, {"type": "prefix", "num_virtual_tokens": nv})
    trainable, total = trainable_parameters(model)
    assert trainable == expected
    assert round(100 * trainable / total, 2) == percent


def test_grouped_query_count_uses_key_value_heads() -> None:
    """SmolLM2-135M: 30 layers, 9 heads but 3 key/value heads of 64: the prefix is a third of a heads-based one."""
    model = _meta_llama(576, 1536, 30, 9, kv=3, vocab=49152)
    attach(model, {"type": "prefix", "num_virtual_tokens": 10})
    assert trainable_parameters(model)[0] == 10 * 30 * 2 * 3 * 64


def test_projection_count() -> None:
    model = _meta_llama(4096, 11008, 32, 32)
    attach(model, {"type": "prefix", "num_virtual_tokens": 10, "prefix_projection": True, "encoder_hidden_size": 512})
    width = 32 * 2 * 4096
    assert trainable_parameters(model)[0] == 10 * 4096 + (4096 * 512 + 512) + (512 * width + width)


# ---- geometry: what the families declare is what the models cache ----------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_family_dims_match_the_models_own_cache(family: str) -> None:
    model = tiny_model(family)
    dims = model_families()[family].dims(model.config)
    ids = inputs(model, batch=2, length=5)
    with torch.no_grad():
        cache = model(input_ids=ids, use_cache=True).cache
    assert len(cache.layers) == dims.num_layers
    for layer in cache.layers:
        assert tuple(layer.keys.shape) == (2, dims.num_key_value_heads, 5, dims.head_dim)
        assert tuple(layer.values.shape) == (2, dims.num_key_value_heads, 5, dims.head_dim)


def test_llama_family_is_grouped_query() -> None:
    """The LLaMA-style tiny model has fewer key/value heads than heads, so GQA is exercised."""
    model = tiny_model("llama")
    assert model.config.num_key_value_heads < model.config.num_attention_heads


# ---- the math ---------------------------------------------------------------------------------------
def _prefix_from_context(model: torch.nn.Module, context: torch.Tensor) -> torch.Tensor:
    """The prefix table ``(m, L * 2 * KV * d)`` holding the keys and values the base model itself caches for
    ``context`` (1, m): per token, layer by layer, key then value, head by head."""
    with torch.no_grad():
        cache = model(input_ids=context, use_cache=True).cache
    rows = []
    for t in range(context.shape[1]):
        parts = []
        for layer in cache.layers:
            parts += [layer.keys[0, :, t, :].reshape(-1), layer.values[0, :, t, :].reshape(-1)]
        rows.append(torch.cat(parts))
    return torch.stack(rows)


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_equals_attending_to_real_context(family: str) -> None:
    """A prefix set to the keys/values the base model computes for context tokens C gives, on the real tokens X,
    the base model's logits for [C ; X] with X at positions 0..n-1 (the prefix keeps no position of its own)."""
    model = tiny_model(family)
    m, n = 3, 6
    context = inputs(model, batch=1, length=m, seed=5)
    real = inputs(model, batch=2, length=n, seed=6)
    full = torch.cat([context.expand(2, m), real], dim=1)
    extra = {}
    if takes_positions(model):
        extra["position_ids"] = torch.cat([torch.arange(m), torch.arange(n)]).unsqueeze(0)
    expected = logits(model, full, torch.ones_like(full), **extra)[:, m:]
    table = _prefix_from_context(model, context)
    attach(model, {"type": "prefix", "num_virtual_tokens": m})
    with torch.no_grad():
        adapter_parameters(model, "default")["llm_adapters_model_level.encoder.embedding.weight"].copy_(table)
    got = logits(model, real, torch.ones_like(real))
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_text_init_starts_as_the_base_model_reading_the_text(family: str) -> None:
    """init='text': the prefix holds the model's own keys/values for the text, so the adapted model gives the
    base model's logits for [text ; X] (the text read at positions 0..m-1, X at 0..n-1)."""
    model = tiny_model(family)
    text = [5, 9, 14]
    real = inputs(model, batch=2, length=5, seed=6)
    full = torch.cat([torch.tensor([text * 2]).expand(2, 6)[:, :4], real], dim=1)  # the text tiled to nv = 4
    extra = {}
    if takes_positions(model):
        extra["position_ids"] = torch.cat([torch.arange(4), torch.arange(5)]).unsqueeze(0)
    expected = logits(model, full, torch.ones_like(full), **extra)[:, 4:]
    attach(model, {"type": "prefix", "num_virtual_tokens": 4, "init": "text", "init_token_ids": text})
    torch.testing.assert_close(logits(model, real, torch.ones_like(real)), expected, atol=2e-5, rtol=1e-4)


def test_text_init_loads_without_recomputing_from_a_tokenizer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 3, "init": "text", "init_token_ids": [7, 8]})
    with torch.no_grad():
        for p in adapter_parameters(model, "default").values():
            p.add_(0.1)  # trained away from the initialisation
    ids = inputs(model)
    expected = logits(model, ids)
    save_adapter(model, tmp_path / "a")
    fresh = tiny_model("llama")
    load_adapter(fresh, tmp_path / "a")
    torch.testing.assert_close(logits(fresh, ids), expected, atol=0, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_left_padding_does_not_change_the_real_tokens(family: str) -> None:
    # prefix + padding + tokens = 8 fit GPT-Neo's local-attention window (see docs/prompt-methods.md)
    model = tiny_model(family)
    attach(model, {"type": "prefix", "num_virtual_tokens": 2})
    real = inputs(model, batch=1, length=4, seed=3)
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), real], dim=1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
    alone = logits(model, real, torch.ones_like(real))
    torch.testing.assert_close(logits(model, padded, mask)[:, 2:], alone, atol=2e-5, rtol=1e-4)


def test_positional_arguments_and_legacy_cache_name() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 2})
    ids = inputs(model)
    expected = logits(model, ids, torch.ones_like(ids))
    with torch.no_grad():
        torch.testing.assert_close(model(ids, torch.ones_like(ids)).logits, expected)
        legacy = model(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=DynamicCache()).logits
    torch.testing.assert_close(legacy, expected)


# ---- generation --------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_generation_with_cache_equals_without(family: str) -> None:
    model = tiny_model(family)
    attach(model, {"type": "prefix", "num_virtual_tokens": 3})
    with torch.no_grad():
        for p in adapter_parameters(model, "default").values():
            p.mul_(0.3)  # keep the random prefix from saturating the tiny model's softmax
    ids = inputs(model, batch=2, length=5)
    mask = torch.ones_like(ids)
    ids[0, :2], mask[0, :2] = 0, 0  # left padding in the first row
    kw = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
    cached = model.generate(input_ids=ids, attention_mask=mask, **kw)
    uncached = model.generate(input_ids=ids, attention_mask=mask, use_cache=False, **kw)
    assert torch.equal(cached, uncached)


def test_batched_generation_equals_one_by_one() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 4})
    a, b = inputs(model, batch=1, length=6, seed=1), inputs(model, batch=1, length=4, seed=2)
    batch = torch.cat([a, torch.cat([torch.zeros(1, 2, dtype=torch.long), b], 1)])
    mask = torch.ones_like(batch)
    mask[1, :2] = 0
    kw = {"max_new_tokens": 5, "do_sample": False, "pad_token_id": 0}
    together = model.generate(input_ids=batch, attention_mask=mask, **kw)
    first = model.generate(input_ids=a, attention_mask=torch.ones_like(a), **kw)
    second = model.generate(input_ids=b, attention_mask=torch.ones_like(b), **kw)
    assert torch.equal(together[0], first[0])
    assert torch.equal(together[1, 2:], second[0])


def test_beam_search_runs_on_the_prefix_cache() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 3})
    ids = inputs(model)
    kw = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0, "num_beams": 3}
    cached = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
    uncached = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False, **kw)
    assert torch.equal(cached, uncached)


def test_manual_decoding_continues_from_the_returned_cache() -> None:
    model = tiny_model("gpt2")
    attach(model, {"type": "prefix", "num_virtual_tokens": 3})
    ids = inputs(model, batch=2, length=6)
    whole = logits(model, ids, torch.ones_like(ids))
    with torch.no_grad():
        first = model(input_ids=ids[:, :5], attention_mask=torch.ones(2, 5, dtype=torch.long), use_cache=True)
        assert first.cache.get_seq_length() == 3 + 5
        step = model(input_ids=ids[:, 5:], attention_mask=torch.ones_like(ids), cache=first.cache).logits
    torch.testing.assert_close(step[:, -1], whole[:, -1], atol=2e-5, rtol=1e-4)


# ---- training ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("projection", [False, True])
def test_training_lowers_the_loss(projection: bool) -> None:
    torch.manual_seed(0)
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 4, "prefix_projection": projection})
    model.train()
    ids = inputs(model, batch=4, length=8)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    losses = []
    for _ in range(30):
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # the tiny random model's logits are small (loss ~ ln 128), so a visible drop is the test
    assert losses[-1] < losses[0] - 0.05


def test_frozen_cache_under_checkpointing_is_read_only() -> None:
    model = tiny_model("gpt2")
    attach(model, {"type": "prefix", "num_virtual_tokens": 3})
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    ids = inputs(model)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    assert isinstance(out.cache, PrefixCache) and out.cache.frozen and out.cache.get_seq_length() == 3
    # the model-level switch GPT-2 reads is back on after the forward
    assert model.transformer.gradient_checkpointing is True
    assert all("_can_checkpoint_with_cache" not in m.__dict__ for m in model.modules())


def test_reentrant_checkpointing_is_refused() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 2})
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
    model.train()
    ids = inputs(model)
    with pytest.raises(ValueError, match="use_reentrant=True cannot train a prefix"):
        model(input_ids=ids, labels=ids)


# ---- composition ---------------------------------------------------------------------------------------
def test_two_prefixes_equal_one_concatenated_prefix() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 2}, name="a")
    attach(model, {"type": "prefix", "num_virtual_tokens": 3}, name="b")
    ids = inputs(model)
    both = logits(model, ids, torch.ones_like(ids))
    table = torch.cat(
        [next(iter(adapter_parameters(model, n).values())).detach().clone() for n in ("a", "b")], dim=0
    )  # (5, width)
    attach(model, {"type": "prefix", "num_virtual_tokens": 5}, name="ab")
    with torch.no_grad():
        next(iter(adapter_parameters(model, "ab").values())).copy_(table)
    set_active(model, ["ab"])
    torch.testing.assert_close(logits(model, ids, torch.ones_like(ids)), both, atol=2e-5, rtol=1e-4)


def test_prefix_with_prompt_generates_the_same_with_and_without_cache() -> None:
    model = tiny_model("opt")
    attach(model, {"type": "prompt", "num_virtual_tokens": 2}, name="p")
    attach(model, {"type": "prefix", "num_virtual_tokens": 3}, name="q")
    with torch.no_grad():
        for name in ("p", "q"):
            for p in adapter_parameters(model, name).values():
                p.mul_(0.3)
    ids = inputs(model)
    mask = torch.ones_like(ids)
    kw = {"max_new_tokens": 5, "do_sample": False, "pad_token_id": 0}
    assert torch.equal(
        model.generate(input_ids=ids, attention_mask=mask, **kw),
        model.generate(input_ids=ids, attention_mask=mask, use_cache=False, **kw),
    )


# ---- errors ----------------------------------------------------------------------------------------------
def test_no_family_is_a_clear_error() -> None:
    model = tiny_model("llama")
    with use_plugins(plugin):
        with pytest.raises(ValueError) as exc:
            attach(model, {"type": "prefix"})
    assert str(exc.value) == (
        "adapter 'prefix': no installed model family covers model_type 'llama'; prefix tuning needs the number "
        "of layers, key/value heads and the head size from a model family plugin (install llm-adapters-families, "
        "or register a family for this model type)"
    )
    assert not hasattr(model, "llm_adapters_model_level")


def test_a_cache_filled_without_the_adapter_is_refused() -> None:
    model = tiny_model("llama")
    ids = inputs(model)
    with torch.no_grad():
        stale = model(input_ids=ids, use_cache=True).cache
    attach(model, {"type": "prefix", "num_virtual_tokens": 2})
    with pytest.raises(ValueError, match="already holds 7 token\\(s\\) computed without this adapter"):
        model(input_ids=ids[:, :1], cache=stale)


def test_four_dimensional_masks_are_refused() -> None:
    model = tiny_model("llama")
    attach(model, {"type": "prefix", "num_virtual_tokens": 2})
    ids = inputs(model)
    with pytest.raises(ValueError, match="pass a 2-D attention_mask"):
        model(input_ids=ids, attention_mask=torch.ones(2, 1, 7, 7))


def test_detach_restores_generation() -> None:
    model = tiny_model("bloom")
    ids = inputs(model)
    kw = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0}
    before = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw)
    attach(model, {"type": "prefix", "num_virtual_tokens": 2})
    detach(model)
    assert torch.equal(model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kw), before)


def test_half_precision_model() -> None:
    model = tiny_model_from_config(model_families()["llama"].tiny_config).to(torch.bfloat16)
    attach(model, {"type": "prefix", "num_virtual_tokens": 2})
    ids = inputs(model)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits).all()
    assert out.cache.layers[0].keys.dtype == torch.bfloat16


@pytest.mark.parametrize("kind", ["prefix", "prompt"])
def test_static_caches_are_refused(kind: str) -> None:
    model = tiny_model("llama")
    attach(model, {"type": kind, "num_virtual_tokens": 2})
    ids = inputs(model)
    with pytest.raises(ValueError, match=f"adapter '{kind}': static \\(compileable\\) caches are not supported"):
        model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=2, cache_implementation="static"
        )


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_two_prompt_adapters_under_checkpointing_get_the_same_gradients(family: str) -> None:
    ids = inputs(tiny_model(family))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(family)
        attach(model, {"type": "prefix", "num_virtual_tokens": 2}, name="a")
        attach(model, {"type": "prefix", "num_virtual_tokens": 3, "prefix_projection": True}, name="b")
        attach(model, {"type": "prompt", "num_virtual_tokens": 2}, name="c")
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({f"{n}.{k}": p.grad.clone() for n in "abc" for k, p in adapter_parameters(model, n).items()})
    assert grads[0].keys() == grads[1].keys()
    for key, grad in grads[0].items():
        assert grad.abs().sum() > 0, key
        torch.testing.assert_close(grads[1][key], grad, atol=1e-5, rtol=1e-4)
