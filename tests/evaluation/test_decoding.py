"""The step-wise batched decoder (``llm_adapters_eval.decoding``), checked against transformers itself: greedy
rows give exactly ``generate(do_sample=False)``'s tokens alone and in a padded batch (LLaMA, GPT-2, BLOOM; with
LoRA adapters routed per row), finished rows leave the batch, the filtering equals transformers' logits
warpers, a seeded row draws what ``generate(do_sample=True)`` draws after ``torch.manual_seed`` whatever batch it
is in, stop strings cut the text, and streamed pieces join to the final text."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import pytest
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

import llm_adapters as la
from llm_adapters.engine import adapter_parameters
from llm_adapters.errors import AdapterStateError, ConfigError
from llm_adapters.plugins import PluginManager
from llm_adapters.testing import tiny_model, use_plugins
from llm_adapters_eval.decoding import Decoded, Row, Sampling, decode, filter_logits
from llm_adapters_eval.generation import GenerationSettings
from llm_adapters_families import bloom, gpt2, llama
from llm_adapters_lora import plugin as lora_plugin
from llm_adapters_prompt import plugin as prompt_plugin

from .helpers import PAD, char_tokenizer

PROMPTS = ["What is 3 + 4?", "Tom has 5 pens.", "x", "Solve 17 - 9", "Apples and pears"]
NEW = 16  # the tiny LLaMA and GPT-2 hold 64 positions: prompt + new tokens stay below
FAMILIES = ["llama", "gpt2", "bloom"]


@pytest.fixture(autouse=True)
def plugins() -> Iterator[PluginManager]:
    with use_plugins(lora_plugin, prompt_plugin, llama, gpt2, bloom) as pm:
        yield pm


def _model(family: str, seed: int = 0) -> torch.nn.Module:
    """A tiny model of ``family`` whose matrices are redrawn larger (std 0.5), so that its greedy text varies
    from token to token rather than repeating one token (what the default small initialisation gives)."""
    model = tiny_model(family, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.dim() == 2:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model


def _ids(tok, prompt: str) -> list[int]:  # type: ignore[no-untyped-def]
    return tok(prompt)["input_ids"]


def _hf(model, prompts: Sequence[list[int]], new: int, eos: list[int] | None, **sampling) -> list[list[int]]:  # type: ignore[no-untyped-def]
    """transformers' own generate on a left-padded batch (one prompt: no padding): the new tokens of each
    row, cut before its first EOS (the padding after it dropped)."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    saved, model.generation_config.eos_token_id = model.generation_config.eos_token_id, None
    try:
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new,
            do_sample=bool(sampling),
            pad_token_id=PAD,
            eos_token_id=eos,
            **sampling,
        )
    finally:
        model.generation_config.eos_token_id = saved
    rows = out[:, width:].tolist()
    return [row[: min((row.index(e) for e in eos or () if e in row), default=len(row))] for row in rows]


def _uneven_eos(free: Sequence[list[int]]) -> list[int]:
    """One or two tokens that end rows at different steps and leave at least one row to its budget: rows
    then leave the batch at different times."""
    candidates = sorted({t for row in free for t in row})
    best: list[int] = []
    score = 1
    for size in (1, 2):
        for i, first in enumerate(candidates):
            for ends in [[first]] if size == 1 else [[first, c] for c in candidates[i + 1 :]]:
                stops = [min((row.index(t) for t in ends if t in row), default=None) for row in free]
                distinct = {s for s in stops if s is not None}
                if None in stops and len(distinct) > score:
                    best, score = ends, len(distinct)
        if best:
            return best
    raise AssertionError("the tiny model's free text offers no uneven end")


def _batch_sizes(model) -> tuple[list[int], object]:  # type: ignore[no-untyped-def]
    sizes: list[int] = []
    handle = model.register_forward_pre_hook(
        lambda m, args, kwargs: sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    return sizes, handle


def _expected_sizes(results: Sequence[Decoded], new: int) -> list[int]:
    """Forward batch sizes when every finished row leaves at once: a row ended by EOS took part in one forward
    per kept token plus the one that produced its EOS, a row out of budget in ``new`` forwards."""
    steps = [len(r.token_ids) + 1 if r.finish_reason == "stop" else new for r in results]
    return [sum(s >= k for s in steps) for k in range(1, max(steps) + 1)]


# ---- greedy: exactly transformers' tokens -----------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_equals_transformers_alone_and_batched_and_finished_rows_leave(family: str) -> None:
    model, tok = _model(family, seed=3), char_tokenizer()
    prompts = [_ids(tok, p) for p in PROMPTS]
    free = [_hf(model, [p], NEW, None)[0] for p in prompts]
    eos = _uneven_eos(free)
    alone = [_hf(model, [p], NEW, eos)[0] for p in prompts]
    padded = _hf(model, prompts, NEW, eos)
    sizes, handle = _batch_sizes(model)
    got = decode(model, tok, [Row(p, NEW) for p in prompts], eos_ids=eos, pad_id=PAD)
    handle.remove()
    assert [g.token_ids for g in got] == alone == padded
    assert [g.finish_reason for g in got] == ["stop" if set(eos) & set(f) else "length" for f in free]
    assert [g.text for g in got] == [tok.decode(a, skip_special_tokens=True) for a in alone]
    assert sizes == _expected_sizes(got, NEW) and sizes[-1] < len(prompts), "finished rows leave the batch"
    assert model.training is False and not torch.is_inference_mode_enabled()


def test_without_eos_stopping_every_row_runs_its_own_budget() -> None:
    model, tok = _model("llama", seed=1), char_tokenizer()
    prompts = [_ids(tok, p) for p in PROMPTS[:3]]
    free = [_hf(model, [p], NEW, None)[0] for p in prompts]
    eos = [free[0][2]]  # generated early by the first row: kept, since EOS does not stop here
    budgets = [NEW, 3, 7]
    sizes, handle = _batch_sizes(model)
    got = decode(
        model, tok, [Row(p, b) for p, b in zip(prompts, budgets, strict=True)], eos_ids=eos, pad_id=PAD,
        stop_at_eos=False,
    )  # fmt: skip
    handle.remove()
    assert [g.token_ids for g in got] == [f[:b] for f, b in zip(free, budgets, strict=True)]
    assert {g.finish_reason for g in got} == {"length"} and eos[0] in got[0].token_ids
    assert sizes == [3, 3, 3, 2, 2, 2, 2] + [1] * (NEW - 7)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_adapters_routed_per_row_equal_each_adapter_alone(family: str) -> None:
    model, tok = _model(family, seed=2), char_tokenizer()
    g = torch.Generator().manual_seed(4)
    for name, targets in (("a", ["attn.q", "attn.v", "mlp.down"]), ("b", ["attn.v", "mlp.up"])):
        la.attach(model, {"type": "lora", "r": 4, "dropout": 0.0, "target_modules": targets}, name=name)
        with torch.no_grad():
            for _, p in sorted(adapter_parameters(model, name).items()):
                p.add_(0.3 * torch.randn(p.shape, generator=g))
    routes = ["a", "b", None, "a", "b"]
    prompts = [_ids(tok, p) for p in PROMPTS]

    def alone(eos: list[int] | None) -> list[list[int]]:
        out = []
        for prompt, name in zip(prompts, routes, strict=True):
            with la.using(model, [name] if name else []):
                out.append(_hf(model, [prompt], NEW, eos)[0])
        return out

    eos = _uneven_eos(alone(None))
    expected = alone(eos)
    with la.disabled(model):
        base = [_hf(model, [p], NEW, eos)[0] for p in prompts]
    assert expected[2] == base[2] and all(e != b for e, b, n in zip(expected, base, routes, strict=True) if n)
    sizes, handle = _batch_sizes(model)
    rows = [Row(p, NEW, adapter=name) for p, name in zip(prompts, routes, strict=True)]
    got = decode(model, tok, rows, eos_ids=eos, pad_id=PAD)
    handle.remove()
    assert [r.token_ids for r in got] == expected
    assert sizes == _expected_sizes(got, NEW) and sizes[-1] < len(prompts)
    # the same rows two at a time: rows join the running batch with their own adapter
    assert [r.token_ids for r in decode(model, tok, rows, eos_ids=eos, pad_id=PAD, max_batch=2)] == expected
    # without routes, every row runs the active adapters (both)
    both = [_hf(model, [p], NEW, eos)[0] for p in prompts]
    assert [r.token_ids for r in decode(model, tok, [Row(p, NEW) for p in prompts], eos_ids=eos, pad_id=PAD)] == both


def _calls(model) -> tuple[list[tuple[int, int]], object]:  # type: ignore[no-untyped-def]
    """Records (rows, new tokens) of every forward pass."""
    calls: list[tuple[int, int]] = []
    handle = model.register_forward_pre_hook(
        lambda m, args, kwargs: calls.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    return calls, handle


MORE = [*PROMPTS, "Bob", "How many legs?", "12 + 30 =", "A B C"]


@pytest.mark.parametrize("family", FAMILIES)
def test_waiting_rows_join_the_running_batch_and_get_their_own_tokens(family: str) -> None:
    model, tok = _model(family, seed=3), char_tokenizer()
    prompts = [_ids(tok, p) for p in MORE]
    eos = _uneven_eos([_hf(model, [p], NEW, None)[0] for p in prompts])
    alone = [_hf(model, [p], NEW, eos)[0] for p in prompts]
    calls, handle = _calls(model)
    finished: list[tuple[int, Decoded]] = []
    got = decode(
        model, tok, [Row(p, NEW) for p in prompts], eos_ids=eos, pad_id=PAD, max_batch=3,
        on_finish=lambda i, d: finished.append((i, d)),
    )  # fmt: skip
    handle.remove()
    assert [g.token_ids for g in got] == alone
    assert max(rows for rows, _ in calls) == 3
    prefills = [at for at, (_, new) in enumerate(calls) if new > 1]
    assert sum(calls[at][0] for at in prefills) == len(prompts), "every prompt is prefilled once"
    joined = [at for at in prefills[1:] if at + 1 < len(calls) and calls[at + 1][0] > calls[at][0]]
    assert joined, "rows joined a batch that was still running"
    assert sorted(i for i, _ in finished) == list(range(len(prompts))) and all(got[i] == d for i, d in finished)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_rows_that_arrive_while_decoding_runs_join_it(family: str) -> None:
    """``more``: rows handed over between steps (a server's new requests) join the running batch and get the
    tokens they get alone; ``more`` is asked for at most the free places, and the results follow in order."""
    model, tok = _model(family, seed=3), char_tokenizer()
    prompts = [_ids(tok, p) for p in MORE]
    alone = [_hf(model, [p], NEW, None)[0] for p in prompts]
    arriving = [Row(p, NEW) for p in prompts[1:]]
    asked: list[int] = []

    def more(free: int) -> list[Row]:
        asked.append(free)
        if len(asked) < 3 or not arriving:  # the first rows arrive after two steps, one or two at a time
            return []
        return [arriving.pop(0) for _ in range(min(free, 2, len(arriving)))]

    calls, handle = _calls(model)
    got = decode(model, tok, [Row(prompts[0], NEW)], eos_ids=[], pad_id=PAD, max_batch=3, more=more)
    handle.remove()
    assert [g.token_ids for g in got] == alone
    assert all(1 <= free <= 3 for free in asked)
    assert max(rows for rows, _ in calls) == 3
    assert calls[0][0] == 1 and any(rows > 1 for rows, new in calls if new == 1), "rows joined the running batch"
    with pytest.raises(ConfigError, match=r"rows that arrive while decoding runs \(more=\) need max_batch"):
        decode(model, tok, [Row(prompts[0], NEW)], eos_ids=[], pad_id=PAD, more=more)


def test_a_cache_that_cannot_take_rows_runs_the_waiting_rows_afterwards() -> None:
    """Sliding-window layers keep only the last tokens: the waiting rows start when the batch is done."""
    from llm_adapters.testing import tiny_model_from_config

    config = {
        "model_type": "mistral", "vocab_size": 128, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 256, "sliding_window": 6,
    }  # fmt: skip
    model, tok = tiny_model_from_config(config, seed=0), char_tokenizer()
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.dim() == 2:
                p.mul_(25)  # larger weights, for greedy text that varies
    prompts = [_ids(tok, p) for p in MORE[:6]]
    eos = _uneven_eos([_hf(model, [p], NEW, None)[0] for p in prompts])
    alone = [_hf(model, [p], NEW, eos)[0] for p in prompts]
    calls, handle = _calls(model)
    got = decode(model, tok, [Row(p, NEW) for p in prompts], eos_ids=eos, pad_id=PAD, max_batch=4)
    handle.remove()
    assert [g.token_ids for g in got] == alone
    prefills = [at for at, (_, new) in enumerate(calls) if new > 1]
    assert [calls[at][0] for at in prefills] == [4, 2]
    assert all(rows <= 2 for rows, _ in calls[prefills[1] :]), "the second batch runs on its own"


@pytest.mark.parametrize(("family", "kind"), [("llama", "prefix"), ("gpt2", "prompt"), ("llama", "ptuning")])
def test_prompt_based_adapters_decode_as_transformers_does(family: str, kind: str) -> None:
    """Virtual tokens live in the cache (prefix) or the input (prompt, P-tuning): rows still leave the batch,
    and waiting rows start when the batch has finished."""
    model, tok = _model(family, seed=1), char_tokenizer()
    la.attach(model, {"type": kind, "num_virtual_tokens": 4}, name="v")
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for _, p in sorted(adapter_parameters(model, "v").items()):
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    prompts = [_ids(tok, p) for p in PROMPTS]
    eos = _uneven_eos([_hf(model, [p], NEW, None)[0] for p in prompts])
    alone = [_hf(model, [p], NEW, eos)[0] for p in prompts]
    for max_batch in (None, 2):
        got = decode(model, tok, [Row(p, NEW) for p in prompts], eos_ids=eos, pad_id=PAD, max_batch=max_batch)
        assert [r.token_ids for r in got] == alone, max_batch


def test_unknown_adapters_are_refused_before_any_work() -> None:
    model, tok = _model("llama"), char_tokenizer()
    sizes, handle = _batch_sizes(model)
    with pytest.raises(AdapterStateError, match=r"no adapter named 'zz' \(the model has no adapters attached\)"):
        decode(model, tok, [Row([5, 6], 2, adapter="zz")], eos_ids=[3], pad_id=PAD)
    assert sizes == []
    # "__base__" alone on a model without adapters is the plain model
    (base,) = decode(model, tok, [Row([5, 6], 4, adapter="__base__")], eos_ids=[], pad_id=PAD)
    assert base.token_ids == _hf(model, [[5, 6]], 4, None)[0]
    la.attach(model, {"type": "lora", "r": 2}, name="a")
    with pytest.raises(AdapterStateError, match=r"no adapter named 'zz' \(attached: a\)"):
        decode(model, tok, [Row([5, 6], 2, adapter="a"), Row([7], 2, adapter="zz")], eos_ids=[3], pad_id=PAD)
    handle.remove()


# ---- sampling ------------------------------------------------------------------------------------------------
SETTINGS = [(0.7, 0, 1.0), (1.0, 5, 1.0), (1.0, 0, 0.9), (1.3, 12, 0.5), (0.5, 1, 0.3), (2.0, 200, 0.99)]


def _warped(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """transformers' warpers, in the order its generate applies them."""
    scores = logits.unsqueeze(0)
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)
    return scores.squeeze(0)


def test_filtering_equals_the_transformers_warpers_row_by_row() -> None:
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        logits = torch.randn(len(SETTINGS), 150, generator=g) * (1 + trial % 4)
        ours = filter_logits(
            logits,
            torch.tensor([s[0] for s in SETTINGS]),
            torch.tensor([s[1] for s in SETTINGS]),
            torch.tensor([s[2] for s in SETTINGS], dtype=torch.float64),
        )
        for row, setting in enumerate(SETTINGS):
            reference = _warped(logits[row], *setting)
            kept = torch.isfinite(reference)
            assert torch.equal(torch.isfinite(ours[row]), kept), (trial, setting)
            torch.testing.assert_close(ours[row][kept], reference[kept], rtol=1e-6, atol=0)
    # ties at the k-th score are kept, as transformers keeps them
    tied = torch.tensor([[3.0, 1.0, 3.0, 3.0, 0.0]])
    ours = filter_logits(tied, torch.tensor([1.0]), torch.tensor([2]), torch.tensor([1.0], dtype=torch.float64))
    assert torch.isfinite(ours).tolist() == [[True, False, True, True, False]]


@pytest.mark.parametrize("setting", [(0.8, 20, 0.9), (1.0, 0, 1.0), (1.3, 0, 0.5), (0.5, 3, 1.0)])
def test_a_seeded_row_draws_what_transformers_draws_alone_or_in_any_batch(setting) -> None:  # type: ignore[no-untyped-def]
    model, tok = _model("llama", seed=1), char_tokenizer()
    temperature, top_k, top_p = setting
    prompt = _ids(tok, PROMPTS[0])
    torch.manual_seed(7)
    reference = _hf(model, [prompt], NEW, None, temperature=temperature, top_k=top_k, top_p=top_p)[0]
    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, seed=7)
    (alone,) = decode(model, tok, [Row(prompt, NEW, sampling)], eos_ids=[], pad_id=PAD)
    others = [
        Row(_ids(tok, PROMPTS[1]), 5, Sampling(temperature=1.0, seed=1)),
        Row(_ids(tok, PROMPTS[2]), NEW),  # greedy
        Row(_ids(tok, PROMPTS[3]), 3, Sampling(temperature=0.9)),  # unseeded: torch's global state
    ]
    batch = decode(model, tok, [others[0], Row(prompt, NEW, sampling), *others[1:]], eos_ids=[], pad_id=PAD)
    assert alone.token_ids == reference == batch[1].token_ids
    assert batch[2].token_ids == _hf(model, [others[1].prompt_ids], NEW, None)[0], "the greedy row stays greedy"


def test_same_seed_same_tokens_other_seed_other_tokens_top_k_1_is_greedy() -> None:
    model, tok = _model("gpt2", seed=1), char_tokenizer()
    prompt = _ids(tok, PROMPTS[1])

    def run(**sampling: object) -> list[int]:
        (out,) = decode(model, tok, [Row(prompt, NEW, Sampling(**sampling))], eos_ids=[], pad_id=PAD)  # type: ignore[arg-type]
        return out.token_ids

    assert run(temperature=1.0, seed=3) == run(temperature=1.0, seed=3)
    assert run(temperature=1.0, seed=3) != run(temperature=1.0, seed=4)
    assert run(temperature=1.5, top_k=1, seed=5) == _hf(model, [prompt], NEW, None)[0]


# ---- stop strings and streaming --------------------------------------------------------------------------------
def test_stop_strings_cut_the_text_before_the_earliest_one() -> None:
    model, tok = _model("llama", seed=5), char_tokenizer()
    prompt = _ids(tok, PROMPTS[0])
    free = _hf(model, [prompt], NEW, None)[0]
    text = tok.decode(free, skip_special_tokens=True)
    stop = text[6:8]
    at = text.index(stop)
    (got,) = decode(model, tok, [Row(prompt, NEW, Sampling(stop=(stop,)))], eos_ids=[], pad_id=PAD)
    assert (got.text, got.finish_reason, got.stop_string) == (text[:at], "stop", stop)
    spelt = next(n for n in range(1, NEW + 1) if stop in tok.decode(free[:n], skip_special_tokens=True))
    assert got.token_ids == free[:spelt], "generation ends with the token that completes the stop string"
    # of two stop strings, the one that occurs first wins, whatever their order
    later = text[10:12]
    assert text.index(later) > at
    (two,) = decode(model, tok, [Row(prompt, NEW, Sampling(stop=(later, stop)))], eos_ids=[], pad_id=PAD)
    assert (two.text, two.stop_string) == (text[:at], stop)
    # a stop string that never occurs changes nothing
    (none,) = decode(model, tok, [Row(prompt, NEW, Sampling(stop=("\u2603",)))], eos_ids=[], pad_id=PAD)
    assert (none.text, none.finish_reason, none.stop_string, none.token_ids) == (text, "length", None, free)


@pytest.mark.parametrize("stop", [(), ("@@",), None])
def test_streamed_pieces_join_to_the_final_text(stop) -> None:  # type: ignore[no-untyped-def]
    model, tok = _model("llama", seed=5), char_tokenizer()
    prompts = [_ids(tok, p) for p in PROMPTS[:3]]
    free = [_hf(model, [p], NEW, None)[0] for p in prompts]
    eos = _uneven_eos(free)
    if stop is None:  # a stop string that occurs in the first row's text, and the start of one that never does
        text = tok.decode(free[0], skip_special_tokens=True)
        stop = (text[4:6], text[1] + "\u2603")
    calls: list[list[tuple[int, str]]] = [[] for _ in prompts]
    rows = [
        Row(p, NEW, Sampling(stop=stop), on_token=lambda t, piece, i=i: calls[i].append((t, piece)))
        for i, p in enumerate(prompts)
    ]
    got = decode(model, tok, rows, eos_ids=eos, pad_id=PAD)
    for result, seen in zip(got, calls, strict=True):
        assert "".join(piece for _, piece in seen) == result.text
        tokens = [t for t, _ in seen]
        if result.stopped_at_eos:  # the callback also hears the EOS that ended the row
            assert tokens[:-1] == result.token_ids and tokens[-1] in eos
        else:
            assert tokens == result.token_ids
    assert any(len([p for _, p in seen if p]) > 1 for seen in calls), "text arrives in pieces"


def test_held_back_text_whitespace_and_partial_stop_strings() -> None:
    """Trailing whitespace and the start of a stop string wait for the next token; the end flushes them."""

    class Script:
        """A tokenizer stand-in: token i decodes to PIECES[i]."""

        PIECES = ["a", " ", "#", "b", "\n", "#", "#", "c"]

        def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
            return "".join(self.PIECES[i] for i in ids)

    from llm_adapters_eval.decoding import _RowState

    seen: list[str] = []
    row = Row([1], 8, Sampling(stop=("##",)), on_token=lambda t, piece: seen.append(piece))
    state = _RowState(row, Script(), frozenset(), True)
    assert [state.push(t) for t in range(7)] == [True] * 6 + [False]
    # held: " " (whitespace), then " #" (the start of "##" after whitespace), then "\n#", whose "#" completed
    # the stop string: the end hands out what precedes it
    assert seen == ["a", "", "", " #b", "", "", "\n"]
    result = state.result()
    assert (result.text, result.stop_string, result.finish_reason) == ("a #b\n", "##", "stop")
    assert "".join(seen) == result.text and result.token_ids == list(range(7))


# ---- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"temperature": -0.1}, "sampling: temperature must be a number >= 0 (0 = greedy), got -0.1"),
        ({"temperature": float("nan")}, "sampling: temperature must be a number >= 0"),
        ({"top_p": 0.0}, "sampling: top_p must be a number in (0, 1] (1 = off), got 0.0"),
        ({"top_p": 1.5}, "sampling: top_p must be a number in (0, 1]"),
        ({"top_k": -1}, "sampling: top_k must be an integer >= 0 (0 = off), got -1"),
        ({"seed": -3}, "sampling: seed must be an integer >= 0 or None, got -3"),
        ({"stop": ("ok", "")}, "sampling: stop strings must be non-empty strings, got ''"),
    ],
)
def test_bad_sampling_is_a_clear_error(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Sampling(**fields)
    with pytest.raises(ConfigError, match=re.escape(message.replace("sampling:", "generation:"))):
        GenerationSettings(**fields)


def test_bad_rows_and_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="decoding: a row's prompt has no tokens"):
        Row([], 4)
    with pytest.raises(ConfigError, match="decoding: max_new_tokens must be an integer >= 1, got 0"):
        Row([1], 0)
    with pytest.raises(ConfigError, match="decoding: max_batch must be an integer >= 1 or None, got 0"):
        decode(_model("llama"), char_tokenizer(), [Row([5], 2)], eos_ids=[3], pad_id=PAD, max_batch=0)
    with pytest.raises(ConfigError, match=r"beam search \(num_beams=2\) is deterministic and takes no sampling"):
        GenerationSettings(num_beams=2, temperature=0.5)
    with pytest.raises(ConfigError, match="takes no sampling or stop strings"):
        GenerationSettings(num_beams=2, stop=("x",))
    assert Sampling(stop="##").stop == ("##",) and GenerationSettings(stop=["a", "b"]).stop == ("a", "b")
    assert decode(_model("llama"), char_tokenizer(), [], eos_ids=[3], pad_id=PAD) == []
