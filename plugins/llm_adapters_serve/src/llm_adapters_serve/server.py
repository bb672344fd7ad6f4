"""The HTTP layer: the standard library's threading server, one handler thread per connection.

Routes: ``GET /`` (the playground page), ``GET /health``, ``GET /v1/models``, ``GET /v1/models/{id}``,
``POST /v1/completions``, ``POST /v1/chat/completions``. HTTP/1.1 with keep-alive; JSON answers carry a
``Content-Length``, streamed answers are server-sent events in chunked transfer encoding, as OpenAI sends them:
``data: {...}\\n\\n`` per event, ending with ``data: [DONE]\\n\\n``.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import APIError, server_error
from .host import ModelHost
from .protocol import GenerationRequest, chunk, model_entry, parse_request, response, usage_chunk
from .scheduler import Finished, Job, SamplingParams, Scheduler
from .settings import ServeSettings

log = logging.getLogger(__name__)

GENERATION_ROUTES = {"/v1/completions": "completion", "/v1/chat/completions": "chat"}


def playground_page() -> bytes:
    return resources.files("llm_adapters_serve").joinpath("static/index.html").read_bytes()


@dataclass
class App:
    """What every handler thread shares."""

    host: ModelHost
    scheduler: Scheduler
    settings: ServeSettings
    log_requests: bool = False
    page: bytes = field(default_factory=playground_page)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App


class _Server6(_Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds a kept-alive connection may sit idle (or a client stall) before it is closed
    server_version = "llm-adapters-serve/0.1"
    server: _Server

    # ---- plumbing ----------------------------------------------------------------------------------------
    @property
    def app(self) -> App:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.app.log_requests:
            super().log_message(format, *args)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: APIError) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        self._send_json(error.status, error.body(), headers)

    def _path(self) -> str:
        path = unquote(urlsplit(self.path).path)
        return path.rstrip("/") or "/"

    def _authorize(self) -> None:
        key = self.app.settings.api_key
        if key is None:
            return
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise APIError(
                401,
                "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
                "(Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        if not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")

    def _read_json(self) -> Any:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise APIError(411, "Send the request body with a Content-Length header.", code="length_required")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self.close_connection = True
            raise APIError(400, "The Content-Length header is not a number.", code="invalid_request") from None
        limit = self.app.settings.max_request_bytes
        if length > limit:
            if length <= 16 * limit:  # read it away, so that the client gets to read the answer
                left = length
                while left > 0:
                    got = self.rfile.read(min(65536, left))
                    if not got:
                        break
                    left -= len(got)
            self.close_connection = True
            raise APIError(
                413, f"The request body is {length} bytes; this server takes at most {limit}.", code="request_too_large"
            )
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise APIError(
                400, f"We could not parse the JSON body of your request ({exc}).", code="invalid_json"
            ) from None

    def _guarded(self, work: Any) -> None:
        try:
            work()
        except APIError as error:
            self._send_error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # never a traceback to the client; the log keeps it
            log.exception("request %s %s failed", self.command, self.path)
            self._send_error(server_error(exc))

    # ---- routes ------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _get(self) -> None:
        path = self._path()
        if path in ("/", "/index.html"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.app.page)))
            self.end_headers()
            self.wfile.write(self.app.page)
            return
        if path == "/health":
            self._send_json(200, {"status": "ok"})
            return
        if path == "/v1/models" or path.startswith("/v1/models/"):
            self._authorize()
            host = self.app.host
            entries = {
                name: model_entry(name, host.created, None if name == host.base_name else host.base_name)
                for name in host.names()
            }
            if path == "/v1/models":
                self._send_json(200, {"object": "list", "data": list(entries.values())})
                return
            name = path[len("/v1/models/") :]
            if name not in entries:
                raise APIError(404, f"The model `{name}` does not exist.", param="model", code="model_not_found")
            self._send_json(200, entries[name])
            return
        if path in GENERATION_ROUTES:
            raise APIError(405, f"{path} takes POST, not GET.", code="method_not_allowed")
        raise APIError(404, f"Unknown request URL: GET {path}.", code="unknown_url")

    def _post(self) -> None:
        path = self._path()
        kind = GENERATION_ROUTES.get(path)
        if kind is None:
            raise APIError(404, f"Unknown request URL: POST {path}.", code="unknown_url")
        self._authorize()
        request = parse_request("chat" if kind == "chat" else "completion", self._read_json())
        host, settings = self.app.host, self.app.settings
        adapter = host.route(request.model)
        prompt_ids = host.encode(request)
        job = Job(
            prompt_ids=prompt_ids,
            max_new_tokens=host.budget(request, len(prompt_ids), settings.default_max_tokens),
            sampling=SamplingParams(
                temperature=request.temperature,
                top_p=request.top_p,
                top_k=request.top_k,
                seed=request.seed,
                stop=request.stop,
            ),
            adapter=adapter,
            stream=request.stream,
        )
        self.app.scheduler.submit(job)
        if request.stream:
            self._stream(request, job)
            return
        kind_, value = job.events.get()
        while kind_ == "token":  # a job that does not stream gets none; skip any all the same
            kind_, value = job.events.get()
        if kind_ == "error":
            raise value
        done: Finished = value
        self._send_json(200, response(request, done.text, done.finish_reason, len(prompt_ids), done.completion_tokens))

    # ---- server-sent events ------------------------------------------------------------------------------
    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._write_chunk(f"data: {text}\n\n".encode())

    def _stream(self, request: GenerationRequest, job: Job) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if request.kind == "chat":
                self._event(chunk(request, "", first=True))
            sent: list[str] = []
            while True:
                kind, value = job.events.get()
                if kind == "token":
                    sent.append(value)
                    self._event(chunk(request, value))
                    continue
                if kind == "error":
                    self._event(value.body())
                    break
                done: Finished = value
                so_far = "".join(sent)
                if done.text.startswith(so_far) and len(done.text) > len(so_far):
                    self._event(chunk(request, done.text[len(so_far) :]))  # text the decoder held back
                self._event(chunk(request, None, done.finish_reason))
                if request.include_usage:
                    self._event(usage_chunk(request, len(job.prompt_ids), done.completion_tokens))
                break
            self._event("[DONE]")
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            job.cancelled.set()  # not started yet: dropped; running: it finishes, unread
            self.close_connection = True


@dataclass
class RunningServer:
    """A server running in background threads (tests, benchmarks, the command's own loop)."""

    httpd: _Server
    scheduler: Scheduler
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.scheduler.close()
        self.thread.join(5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_server(
    host: ModelHost, settings: ServeSettings | None = None, *, log_requests: bool = False
) -> RunningServer:
    """Start the scheduler and the HTTP server in background threads; ``close()`` stops both."""
    settings = settings or ServeSettings()
    scheduler = Scheduler(
        host,
        max_batch_size=settings.max_batch_size,
        batch_wait_ms=settings.batch_wait_ms,
        max_pending=settings.max_pending,
    ).start()
    cls = _Server6 if ":" in settings.host else _Server
    try:
        httpd = cls((settings.host, settings.port), Handler)
    except Exception:
        scheduler.close()
        raise
    httpd.app = App(host, scheduler, settings, log_requests)
    thread = threading.Thread(target=httpd.serve_forever, name="llm-adapters-serve-http", daemon=True)
    thread.start()
    return RunningServer(httpd, scheduler, thread)
