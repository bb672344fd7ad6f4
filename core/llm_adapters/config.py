"""Turning user input (dicts, JSON, CLI ``key=value`` options) into validated adapter configs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:  # pydantic and the adapter contract load when a config is parsed, not on import
    from pydantic import ValidationError

    from .adapter import AdapterConfig


def format_validation_error(exc: ValidationError, where: str) -> str:
    """One line naming every problem pydantic found, prefixed by ``where`` (``adapter 'lora'``, a file name):
    ``train.yaml: batch_size: input should be greater than or equal to 1, got 0; unknown field 'lr'``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {loc!r}")
            continue
        if err["type"] == "missing":
            parts.append(f"{loc}: required but not given")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        text = msg[0].lower() + msg[1:]
        if not loc:  # a check across fields: its message says it all
            parts.append(text)
            continue
        given = err.get("input")
        # some pydantic messages already describe the input ("got a number with a fractional part")
        parts.append(f"{loc}: {text} ({given!r})" if "got " in text else f"{loc}: {text}, got {given!r}")
    return f"{where}: " + "; ".join(parts)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml`` / ``.yml``) or JSON file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of config fields, got {type(data).__name__}")
    return data


def parse_config(config: AdapterConfig | dict[str, Any], *, lenient: bool = False) -> AdapterConfig:
    """Validate ``config`` (a dict with a ``type`` key, or a config object) with its type's config class.

    ``lenient=True`` (used when loading files written by a newer plugin) drops unknown keys with a
    warning instead of failing.
    """
    from .adapter import AdapterConfig

    if isinstance(config, AdapterConfig):
        return config
    if not isinstance(config, dict):
        raise ConfigError(f"an adapter config must be a dict with a 'type' key, got {type(config).__name__}")
    if "type" not in config:
        raise ConfigError("the adapter config has no 'type' key (e.g. {'type': 'lora', ...})")
    from pydantic import ValidationError

    from .registry import get_adapter_type

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
        raise ConfigError(format_validation_error(exc, f"adapter {name!r}")) from None


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
