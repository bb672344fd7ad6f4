"""Command-line options that every command loading a base model shares (``--dtype``, ``--quantize``,
``--device-map``), so that they read and check alike in ``generate``, ``evaluate``, ``serve`` and any plugin's
command. Click only: importing this module loads neither torch nor transformers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .quantize import QUANTIZE_CHOICES

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
#: the ``device_map`` strategies offered on the command line (``load_model`` also takes an explicit map)
DEVICE_MAP_CHOICES = ("auto", "balanced", "sequential")

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def dtype_option(default: str | None = "auto", help: str = "Weights dtype.") -> Decorator:
    """``--dtype``: one of :data:`DTYPE_CHOICES` (``auto``: float32 on the CPU, bf16 / fp16 on a GPU)."""
    return click.option(
        "--dtype", type=click.Choice(DTYPE_CHOICES), default=default, show_default=default is not None, help=help
    )


def quantize_option() -> Decorator:
    """``--quantize 8bit|4bit``: the base model's linear layers quantized by bitsandbytes."""
    return click.option(
        "--quantize",
        type=click.Choice(QUANTIZE_CHOICES),
        default=None,
        help="Load the base model quantized by bitsandbytes (8bit, or 4bit NF4); needs the [quant] extra.",
    )


def device_map_option() -> Decorator:
    """``--device-map``: spread the base model over the machine's GPUs (accelerate's big-model loading)."""
    return click.option(
        "--device-map",
        type=click.Choice(DEVICE_MAP_CHOICES),
        default=None,
        help="Spread the base model's layers over this machine's GPUs.",
    )
