"""Turning user input (dicts, JSON, CLI ``key=value`` options) into validated adapter configs."""

from __future__ import annotations

import json
import types
import typing
import warnings
from collections.abc import Iterable
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
        raise ConfigError(
            "the adapter config has no 'type' key: name an installed adapter type ({'type': '<name>', ...}; "
            "`llm-adapters plugins` lists them)"
        )
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
    """``key=value`` from the CLI; the value is read as JSON when it parses (numbers, lists, true/false) and as
    a string otherwise. :func:`coerce_options` then shapes strings for list fields."""
    if "=" not in text:
        raise ConfigError(f"option {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"option {text!r} has no key before '='")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def parse_options(texts: Iterable[str]) -> dict[str, Any]:
    """Several ``key=value`` options; a key given twice is an error naming both values."""
    out: dict[str, Any] = {}
    for text in texts:
        key, value = parse_option(text)
        if key in out:
            raise ConfigError(
                f"option {key!r} is given twice ({out[key]!r} and {value!r}); give it once "
                "(for a list, separate the items with commas: key=a,b)"
            )
        out[key] = value
    return out


_REGEX_CHARS = frozenset("*+?[](){}|^$\\")


def _accepts(annotation: Any) -> tuple[bool, bool]:
    """``(accepts a list, accepts a plain string)`` for a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        shapes = [_accepts(a) for a in typing.get_args(annotation)]
        return any(s[0] for s in shapes), any(s[1] for s in shapes)
    if origin in (list, tuple, set, frozenset):
        return True, False
    if origin is typing.Literal:
        return False, all(isinstance(a, str) for a in typing.get_args(annotation))
    return False, annotation is str


def coerce_options(adapter_type: str, options: dict[str, Any]) -> dict[str, Any]:
    """Shape command-line strings for the adapter's config: a field that takes a list gets ``"a,b"`` as
    ``["a", "b"]`` and ``"a"`` as ``["a"]``; where the field also takes a single string (``target_modules``:
    one regular expression), a value with regex characters (``*+?[](){}|^$\\``) stays a string."""
    from .registry import get_adapter_type

    fields = get_adapter_type(adapter_type).config_class.model_fields
    out = dict(options)
    for key, value in options.items():
        if key not in fields or not isinstance(value, str):
            continue
        takes_list, takes_str = _accepts(fields[key].annotation)
        if not takes_list or (takes_str and _REGEX_CHARS & set(value)):
            continue
        out[key] = [item.strip() for item in value.split(",") if item.strip()]
    return out
