"""The server's options: where it listens, how it batches, what it accepts. No torch."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ServeSettings(BaseModel):
    """How ``llm-adapters serve`` runs (the model and adapters are loaded separately, by :mod:`.host`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on (default: loopback only).")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port).")
    api_key: str | None = Field(
        None, min_length=1, description="When set, every /v1 request needs `Authorization: Bearer <key>`."
    )
    max_batch_size: int = Field(8, ge=1, le=1024, description="Most requests decoded together in one batch.")
    batch_wait_ms: float = Field(
        5.0,
        ge=0.0,
        le=10_000.0,
        description="How long the scheduler waits for more requests after the first one of a batch arrives.",
    )
    max_pending: int = Field(
        256, ge=1, description="Most requests waiting for a batch; beyond it requests get 503 (overloaded)."
    )
    max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body accepted; a larger one gets 413."
    )
    default_max_tokens: int = Field(
        256,
        ge=1,
        description="Most new tokens for a chat request that gives no max_tokens (completions default to "
        "OpenAI's 16), always within the model's context.",
    )

    @field_validator("host")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if value.strip() != value or " " in value:
            raise ValueError(f"host {value!r} holds spaces")
        return value

    @property
    def loopback(self) -> bool:
        """Whether the server listens on a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
