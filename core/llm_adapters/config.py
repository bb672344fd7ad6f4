"""Turning user input (dicts, JSON, CLI ``key=value`` options) into validated adapter configs."""

from __future__ import annotations

import json
import warnings
from typing import Any

from pydantic import ValidationError

from .adapter import AdapterConfig
from .errors import ConfigError
from .registry import get_adapter_type


def format_validation_error(adapter: str, exc: ValidationError) -> str:
    """``adapter 'lora': r must be >= 1 ...`` style text for every problem pydantic found."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
            continue
        given = err.get("input")
        text = msg[0].lower() + msg[1:]
        # some pydantic messages already describe the input ("got a number with a fractional part")
        parts.append(f"{loc}: {text} ({given!r})" if "got " in text else f"{loc}: {text}, got {given!r}")
    return f"adapter {adapter!r}: " + "; ".join(parts)


def parse_config(config: AdapterConfig | dict[str, Any], *, lenient: bool = False) -> AdapterConfig:
    """Validate ``config`` (a dict with a ``type`` key, or a config object) with its type's config class.

    ``lenient=True`` (used when loading files written by a newer plugin) drops unknown keys with a
    warning instead of failing.
    """
    if isinstance(config, AdapterConfig):
        return config
    if not isinstance(config, dict):
        raise ConfigError(f"an adapter config must be a dict with a 'type' key, got {type(config).__name__}")
    if "type" not in config:
        raise ConfigError("the adapter config has no 'type' key (e.g. {'type': 'lora', ...})")
    name = config["type"]
    cls = get_adapter_type(name).config_class
    data = dict(config)
    if lenient:
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            warnings.warn(
                f"adapter {name!r}: ignoring config field(s) {unknown} that this version of the plugin "
                "does not know (written by a newer version?)",
                stacklevel=2,
            )
            for key in unknown:
                data.pop(key)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(name, exc)) from None


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` from the CLI; the value is read as JSON when it parses (numbers, lists, true/false),
    as a comma-separated list for ``target_modules``, and as a string otherwise."""
    if "=" not in text:
        raise ConfigError(f"option {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
        if key == "target_modules" and "," in raw:
            value = [v.strip() for v in raw.split(",") if v.strip()]
    return key, value
