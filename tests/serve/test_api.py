"""The API through the official ``openai`` client: the models list, greedy completions and chat equal to local
generation for the base and each adapter (one at a time, and with requests for different adapters in flight
together, which the scheduler batches), stop strings, seeds, streaming."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
import torch

from .conftest import BASE, Served

PROMPTS = ["What is 3 + 4?", "Tom has 5 pens and buys 2 more.", "x"]
MODELS = [BASE, "alpha", "beta-dir"]


def test_models_lists_the_base_and_one_entry_per_adapter(served: Served) -> None:
    models = served.client().models.list().data
    assert [m.id for m in models] == [BASE, "alpha", "beta-dir"]  # alpha: NAME=DIR; beta-dir: the directory
    assert {m.object for m in models} == {"model"}
    assert [getattr(m, "parent", None) for m in models] == [None, BASE, BASE]
    assert served.client().models.retrieve("alpha").id == "alpha"


def test_the_adapters_really_answer_differently(served: Served) -> None:
    """Without this the equality tests below could not tell the adapters apart."""
    texts = {m: served.local(m, PROMPTS[0], 12).text for m in MODELS}
    assert len(set(texts.values())) == 3, texts


@pytest.mark.parametrize("model", MODELS)
def test_greedy_completions_equal_local_generation(served: Served, model: str) -> None:
    client = served.client()
    for prompt in PROMPTS:
        got = client.completions.create(model=model, prompt=prompt, max_tokens=10, temperature=0)
        want = served.local(model, prompt, 10)
        (choice,) = got.choices
        assert choice.text == want.text, (model, prompt)
        assert got.usage.completion_tokens == len(want.token_ids)
        assert got.usage.prompt_tokens == len(served.tokenizer(prompt)["input_ids"])
        assert got.usage.total_tokens == got.usage.prompt_tokens + got.usage.completion_tokens
        assert choice.finish_reason == ("stop" if want.stopped_at_eos else "length")
        assert got.model == model and got.object == "text_completion" and got.id.startswith("cmpl-")


def test_concurrent_requests_for_different_adapters_share_batches(served: Served) -> None:
    """Nine requests (three per model, different prompts and budgets) sent at once: each answer equals its
    local generation, and the scheduler ran rows of different adapters in one batch."""
    client = served.client()
    jobs = [(m, p, 6 + 2 * i) for i, p in enumerate(PROMPTS) for m in MODELS]
    answers: dict[int, object] = {}
    start = threading.Barrier(len(jobs))

    def ask(k: int, model: str, prompt: str, n: int) -> None:
        start.wait()
        answers[k] = client.completions.create(model=model, prompt=prompt, max_tokens=n, temperature=0)

    before = len(served.running.scheduler.history)
    threads = [threading.Thread(target=ask, args=(k, *job)) for k, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == len(jobs)
    for k, (model, prompt, n) in enumerate(jobs):
        want = served.local(model, prompt, n)
        assert answers[k].choices[0].text == want.text, (model, prompt)  # type: ignore[attr-defined]
        assert answers[k].usage.completion_tokens == len(want.token_ids)  # type: ignore[attr-defined]
    batches = list(served.running.scheduler.history)[before:]
    assert sum(b.size for b in batches) == len(jobs)
    mixed = [b for b in batches if len(set(b.routes)) > 1]
    assert mixed, f"no batch mixed adapters: {[b.routes for b in batches]}"
    assert max(b.size for b in batches) <= 8, "max_batch_size is respected"


def test_chat_uses_the_tokenizer_chat_template(served: Served) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    expected_prompt = "[system] Be brief.\n[user] Hi there\n[assistant] "  # the template in conftest, by hand
    for model in MODELS:
        got = served.client().chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
        want = served.local(model, expected_prompt, 8)
        (choice,) = got.choices
        assert choice.message.role == "assistant"
        assert choice.message.content == want.text, model
        assert got.usage.prompt_tokens == len(served.tokenizer(expected_prompt)["input_ids"])
        assert got.object == "chat.completion" and got.id.startswith("chatcmpl-")


def test_a_chat_template_that_writes_the_bos_token_gets_no_second_one(served: Served) -> None:
    """The prompt ids are the template's text tokenized without added specials; the answer equals plain
    transformers greedy generation from those ids."""
    host = served.host
    saved = host.formatter.tokenizer.chat_template
    host.formatter.tokenizer.chat_template = "{{ bos_token }}" + saved
    try:
        got = served.client().chat.completions.create(
            model=BASE, messages=[{"role": "user", "content": "Hi"}], max_tokens=6, temperature=0
        )
    finally:
        host.formatter.tokenizer.chat_template = saved
    tok, model = served.tokenizer, served.reference
    ids = tok("<s>[user] Hi\n[assistant] ", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    import llm_adapters as la

    with la.disabled(model):
        out = model.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=6, do_sample=False, eos_token_id=2, pad_token_id=0
        )
    new = out[0, len(ids) :].tolist()
    new = new[: new.index(2)] if 2 in new else new
    assert got.usage.prompt_tokens == len(ids)
    assert got.choices[0].message.content == tok.decode(new, skip_special_tokens=True)


def test_stop_strings_cut_the_answer(served: Served) -> None:
    full = served.local("alpha", PROMPTS[1], 16).text
    assert len(full) >= 6, full
    stop = full[3:5]
    cut = full[: full.index(stop)]
    got = served.client().completions.create(
        model="alpha", prompt=PROMPTS[1], max_tokens=16, temperature=0, stop=[stop]
    )
    assert got.choices[0].text == cut
    assert got.choices[0].finish_reason == "stop"


def test_a_seed_repeats_a_sampled_answer(served: Served) -> None:
    client = served.client()
    kwargs = {"model": "beta-dir", "prompt": PROMPTS[0], "max_tokens": 12, "temperature": 1.5, "top_p": 0.95}
    first = client.completions.create(seed=7, **kwargs).choices[0].text
    again = client.completions.create(seed=7, **kwargs).choices[0].text
    others = {client.completions.create(seed=s, **kwargs).choices[0].text for s in range(1, 6)}
    assert first == again
    assert len(others | {first}) > 1, "different seeds draw different answers"
    greedy = served.local("beta-dir", PROMPTS[0], 12).text
    only_best = client.completions.create(extra_body={"top_k": 1}, seed=3, **kwargs).choices[0].text
    assert only_best == greedy, "top_k=1 leaves the arg-max only: the greedy answer"


def test_token_id_prompts(served: Served) -> None:
    ids = served.tokenizer(PROMPTS[0])["input_ids"]
    got = served.client().completions.create(model="alpha", prompt=ids, max_tokens=8, temperature=0)
    assert got.choices[0].text == served.local("alpha", PROMPTS[0], 8).text


# ---- streaming ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [BASE, "alpha"])
def test_streamed_completion_equals_local_generation(served: Served, model: str) -> None:
    stream = served.client().completions.create(
        model=model,
        prompt=PROMPTS[1],
        max_tokens=12,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    events = list(stream)
    pieces = [e.choices[0].text for e in events if e.choices]
    finishes = [e.choices[0].finish_reason for e in events if e.choices]
    want = served.local(model, PROMPTS[1], 12)
    assert "".join(pieces) == want.text
    assert sum(1 for p in pieces if p) >= 2, "the answer came in pieces"
    assert finishes[-1] == ("stop" if want.stopped_at_eos else "length") and not any(finishes[:-1])
    assert events[-1].choices == [] and events[-1].usage.completion_tokens == len(want.token_ids)
    assert {e.id for e in events} == {events[0].id}


def test_streamed_chat(served: Served) -> None:
    messages = [{"role": "user", "content": "Count"}]
    stream = served.client().chat.completions.create(
        model="beta-dir", messages=messages, max_tokens=10, temperature=0, stream=True
    )
    events = list(stream)
    assert events[0].choices[0].delta.role == "assistant"
    text = "".join(e.choices[0].delta.content or "" for e in events)
    assert text == served.local("beta-dir", "[user] Count\n[assistant] ", 10).text
    assert events[-1].choices[0].finish_reason in ("stop", "length")
    assert all(e.object == "chat.completion.chunk" for e in events)


def test_server_sent_events_framing_and_keep_alive(served: Served) -> None:
    """The bytes on the wire: ``data: <json>\\n\\n`` events ending with ``data: [DONE]\\n\\n``; then a second
    request on the same (kept-alive) connection."""
    conn = http.client.HTTPConnection("127.0.0.1", served.running.port, timeout=60)
    body = {
        "model": "alpha",
        "messages": [{"role": "user", "content": "Count"}],
        "max_tokens": 5,
        "stream": True,
        "temperature": 0,
    }
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    res = conn.getresponse()
    assert res.status == 200 and res.getheader("Content-Type").startswith("text/event-stream")
    raw = res.read().decode()
    assert raw.endswith("\n\ndata: [DONE]\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    chunks = [json.loads(e[len("data: ") :]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == served.local("alpha", "[user] Count\n[assistant] ", 5).text
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == "length"
    conn.request("GET", "/v1/models")
    again = conn.getresponse()
    assert again.status == 200 and len(json.loads(again.read())["data"]) == 3
    conn.close()
