"""Errors as the OpenAI API shapes them: an HTTP status and ``{"error": {"message", "type", "param", "code"}}``.

Every failure a client can cause is an :class:`APIError` raised where it is found; the HTTP layer turns it into
its status and body. Anything else becomes a 500 ``server_error`` whose body names the exception's class and
message only (the traceback goes to the server's log, never to the client).
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """One error response. ``type`` is OpenAI's error type, ``param`` the request field at fault (or None),
    ``code`` a short machine-readable reason (or None)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(param: str, message: str, code: str = "invalid_value") -> APIError:
    """A 400 for one bad request field."""
    return APIError(400, message, param=param, code=code)


def missing(param: str) -> APIError:
    return APIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def unsupported(param: str, message: str) -> APIError:
    return APIError(400, message, param=param, code="unsupported_parameter")


def model_not_found(name: object, available: list[str]) -> APIError:
    return APIError(
        404,
        f"The model `{name}` does not exist. This server has: {', '.join(available)} (GET /v1/models lists them).",
        param="model",
        code="model_not_found",
    )


def context_length_exceeded(param: str, limit: int, prompt_tokens: int, max_tokens: int | None) -> APIError:
    if max_tokens is None:
        detail = f"your prompt has {prompt_tokens} tokens, leaving none to generate"
    else:
        detail = (
            f"you requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, {max_tokens} "
            "in the completion)"
        )
    return APIError(
        400,
        f"This model's maximum context length is {limit} tokens. However, {detail}. Please reduce the length "
        "of the prompt or of max_tokens.",
        param=param,
        code="context_length_exceeded",
    )


def server_error(exc: BaseException) -> APIError:
    return APIError(
        500,
        f"The server failed while handling the request ({type(exc).__name__}: {exc}).",
        type="server_error",
        code="internal_error",
    )
