"""``llm-adapters serve``: an OpenAI-compatible server with per-request adapters, and a playground page."""

from __future__ import annotations

import click

from llm_adapters.cli_options import dtype_option, quantize_option


@click.command("serve")
@click.option(
    "--model",
    default=None,
    help="Base model: an HF id, a local directory, or a name or file an installed model source handles "
    "(a .gguf file, the embedded smollm2-135m); default: the installed default model.",
)
@click.option(
    "--adapter-path",
    "adapter_paths",
    multiple=True,
    metavar="[NAME=]DIR",
    help="An adapter directory, served as the model NAME (default: the directory's name). Repeatable; "
    "requests for different adapters are batched together.",
)
@click.option(
    "--served-model-name", default=None, help="The base model's name in the API (default: the --model value)."
)
@click.option(
    "--template",
    default=None,
    help="Prompt template for /v1/chat/completions (default: the tokenizer's chat template, else alpaca).",
)
@dtype_option()
@quantize_option()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port (0: any).")
@click.option(
    "--api-key",
    default=None,
    envvar="LLM_ADAPTERS_API_KEY",
    help="Require `Authorization: Bearer KEY` on every /v1 request (also read from $LLM_ADAPTERS_API_KEY).",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(1, 1024),
    default=8,
    show_default=True,
    help="Most requests decoded together in one batch.",
)
@click.option(
    "--batch-wait-ms",
    type=click.FloatRange(0, 10_000),
    default=5.0,
    show_default=True,
    help="How long to wait for more requests after the first of a batch arrives.",
)
@click.option(
    "--default-max-tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="New tokens for a chat request without max_tokens (completions default to 16, as OpenAI's).",
)
@click.option("--log-requests", is_flag=True, help="Log every request line to stderr.")
def command(
    model: str | None,
    adapter_paths: tuple[str, ...],
    served_model_name: str | None,
    template: str | None,
    dtype: str,
    quantize: str | None,
    host: str,
    port: int,
    api_key: str | None,
    max_batch_size: int,
    batch_wait_ms: float,
    default_max_tokens: int,
    log_requests: bool,
) -> None:
    """Serve MODEL and its adapters with an OpenAI-compatible API (/v1/models, /v1/completions,
    /v1/chat/completions, streaming included) and a playground page at /.

    Each adapter is a model of its own in the API; concurrent requests, for the base and for different
    adapters, are decoded together in one batch.
    """
    from pydantic import ValidationError

    from llm_adapters.config import format_validation_error
    from llm_adapters.errors import ConfigError

    from .settings import ServeSettings

    try:
        settings = ServeSettings(
            host=host,
            port=port,
            api_key=api_key,
            max_batch_size=max_batch_size,
            batch_wait_ms=batch_wait_ms,
            default_max_tokens=default_max_tokens,
        )
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "serve")) from None

    from .host import ModelHost
    from .server import start_server

    served = ModelHost.load(
        model,
        adapter_paths,
        served_model_name=served_model_name,
        template=template,
        dtype=dtype,
        quantize=quantize,
    )
    running = start_server(served, settings, log_requests=log_requests)
    echo = lambda text: click.echo(text, err=True)  # noqa: E731
    echo(f"Serving {', '.join(served.names())} at {running.url}/ (playground) and {running.url}/v1 (API)")
    echo(f"Chat requests use {served.formatter.describe()}; batches of up to {max_batch_size}. Ctrl-C stops.")
    if not settings.loopback and settings.api_key is None:
        echo(f"Warning: listening on {host} without --api-key: anyone who can reach this address can use it.")
    try:
        while running.thread.is_alive():
            running.thread.join(0.5)
    except KeyboardInterrupt:
        echo("Stopping.")
    finally:
        running.close()
