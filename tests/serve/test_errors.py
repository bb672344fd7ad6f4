"""Errors as the OpenAI API shapes them, seen through the ``openai`` client's exception classes (and raw HTTP
where the client cannot send the request): status, type, param, code, message; never a traceback. The API
key."""

from __future__ import annotations

import http.client
import json
from typing import Any

import openai
import pytest

from llm_adapters_serve.server import start_server
from llm_adapters_serve.settings import ServeSettings

from .conftest import BASE, Served


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert "Traceback" not in exc.response.text
    return body["error"]


def _raw(served: Served, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", served.running.port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, res.getheader("Content-Type"), data


def test_unknown_model_is_a_404_that_lists_the_models(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        served.client().completions.create(model="gamma", prompt="hi", max_tokens=2)
    err = _error(info.value)
    assert info.value.status_code == 404
    assert err["code"] == "model_not_found" and err["param"] == "model" and err["type"] == "invalid_request_error"
    assert err["message"].startswith("The model `gamma` does not exist.")
    assert f"{BASE}, alpha, beta-dir" in err["message"]
    with pytest.raises(openai.NotFoundError):
        served.client().models.retrieve("gamma")


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"temperature": 3}, "temperature", "'temperature' must be in [0, 2], got 3."),
        ({"temperature": -0.5}, "temperature", "'temperature' must be in [0, 2], got -0.5."),
        ({"top_p": 0}, "top_p", "'top_p' must be in (0, 1], got 0."),
        ({"max_tokens": 0}, "max_tokens", "'max_tokens' must be at least 1, got 0."),
        ({"max_tokens": "ten"}, "max_tokens", "'max_tokens' must be an integer, got 'ten'."),
        ({"seed": -1}, "seed", "'seed' must be at least 0, got -1."),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "'stop' holds at most 4 sequences, got 5."),
        ({"stop": ""}, "stop", "'stop' sequences must not be empty strings."),
        ({"n": 2}, "n", "'n'=2 is not supported by this server; send one request per choice."),
        ({"logprobs": 2}, "logprobs", "'logprobs'=2 is not supported by this server; leave it out."),
        ({"extra_body": {"top_k": -1}}, "top_k", "'top_k' must be at least 0, got -1."),
    ],
)
def test_bad_parameters_are_400s_naming_the_parameter(served: Served, kwargs: dict, param: str, message: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        served.client().completions.create(model="alpha", prompt="hi", **kwargs)
    err = _error(info.value)
    assert (info.value.status_code, err["param"], err["message"]) == (400, param, message)


def test_missing_and_malformed_chat_fields(served: Served) -> None:
    client = served.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="alpha", messages=[])
    assert _error(info.value)["message"] == "'messages' must be a non-empty list of messages."
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="alpha", messages=[{"role": "robot", "content": "hi"}])
    err = _error(info.value)
    assert err["param"] == "messages[0].role"
    assert err["message"] == "messages[0].role must be one of system, developer, user, assistant, got 'robot'."
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="alpha", prompt=["one", "two"])
    assert _error(info.value)["code"] == "unsupported_parameter"


def test_a_prompt_longer_than_the_context_is_a_400(served: Served) -> None:
    limit = served.host.context  # 96: the tiny model's max_position_embeddings
    assert limit == 96
    prompt = "a" * 90  # 91 tokens with <s>
    with pytest.raises(openai.BadRequestError) as info:
        served.client().completions.create(model=BASE, prompt=prompt, max_tokens=10)
    err = _error(info.value)
    assert err["code"] == "context_length_exceeded" and err["param"] == "prompt"
    assert err["message"] == (
        "This model's maximum context length is 96 tokens. However, you requested 101 tokens (91 in the prompt, "
        "10 in the completion). Please reduce the length of the prompt or of max_tokens."
    )
    # without max_tokens the budget is cut to what the context leaves: 96 - 91 = 5
    got = served.client().completions.create(model=BASE, prompt=prompt, extra_body={"max_tokens": None})
    assert got.usage.completion_tokens <= 5
    with pytest.raises(openai.BadRequestError) as info:
        served.client().chat.completions.create(
            model=BASE, messages=[{"role": "user", "content": "b" * 100}], max_tokens=1
        )
    assert _error(info.value)["param"] == "messages"


def test_a_body_over_the_limit_is_a_413(served: Served) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        served.client().completions.create(model=BASE, prompt="c" * 70_000, max_tokens=1)
    assert info.value.status_code == 413
    err = _error(info.value)
    assert err["code"] == "request_too_large"
    assert "this server takes at most 65536" in err["message"]


def test_raw_http_errors(served: Served) -> None:
    status, ctype, data = _raw(served, "POST", "/v1/completions", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and ctype == "application/json"
    assert json.loads(data)["error"]["code"] == "invalid_json"
    status, _, data = _raw(served, "POST", "/v1/completions", b"[1, 2]")
    assert status == 400 and json.loads(data)["error"]["message"] == "The request body must be a JSON object."
    status, _, data = _raw(served, "POST", "/v1/embeddings", b"{}")
    assert status == 404 and json.loads(data)["error"]["message"] == "Unknown request URL: POST /v1/embeddings."
    status, _, data = _raw(served, "GET", "/v1/completions")
    assert status == 405
    status, _, data = _raw(served, "POST", "/v1/completions", json.dumps({"prompt": "x"}).encode())
    assert status == 400 and json.loads(data)["error"] == {
        "message": "Missing required parameter: 'model'.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "missing_required_parameter",
    }
    status, _, data = _raw(served, "POST", "/v1/completions", json.dumps({"model": "alpha", "prompt": [999]}).encode())
    assert status == 400 and "token id 999 is outside the vocabulary (0..99)" in json.loads(data)["error"]["message"]


def test_a_failing_batch_is_a_500_without_a_traceback(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import llm_adapters_eval.decoding as decoding

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the device fell over")

    monkeypatch.setattr(decoding, "decode", broken)
    with pytest.raises(openai.InternalServerError) as info:
        served.client().completions.create(model="alpha", prompt="hi", max_tokens=2)
    err = _error(info.value)
    assert info.value.status_code == 500 and err["type"] == "server_error"
    assert err["message"] == "The server failed while handling the request (RuntimeError: the device fell over)."
    # a streamed request gets the error as an event, and the openai client raises it
    with pytest.raises(openai.APIError, match="the device fell over"):
        list(served.client().completions.create(model="alpha", prompt="hi", max_tokens=2, stream=True))
    monkeypatch.undo()
    assert served.client().completions.create(model="alpha", prompt="hi", max_tokens=2).choices[0].text is not None


def test_api_key(served: Served) -> None:
    settings = ServeSettings(port=0, api_key="s3cret", batch_wait_ms=0)
    with start_server(served.host, settings) as running:
        import openai as oa

        def client(key: str) -> oa.OpenAI:
            return oa.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0)

        with pytest.raises(oa.AuthenticationError) as info:
            client("wrong").models.list()
        assert info.value.status_code == 401
        assert _error(info.value) == {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
        with pytest.raises(oa.AuthenticationError):
            client("wrong").completions.create(model=BASE, prompt="hi", max_tokens=2)
        conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
        conn.request("GET", "/v1/models")
        res = conn.getresponse()
        assert res.status == 401 and json.loads(res.read())["error"]["code"] == "missing_api_key"
        conn.request("GET", "/")  # the page itself needs no key; its requests do
        res = conn.getresponse()
        assert res.status == 200 and b"llm-adapters playground" in res.read()
        conn.close()
        assert [m.id for m in client("s3cret").models.list().data] == [BASE, "alpha", "beta-dir"]
        got = client("s3cret").completions.create(model="alpha", prompt="hi", max_tokens=3, temperature=0)
        assert got.choices[0].text == served.local("alpha", "hi", 3).text
