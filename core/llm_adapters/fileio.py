"""Writing files so that nothing is ever half-written, and JSON that every parser reads.

Every file the project writes for a user (adapters, metrics, reports, summaries) goes through
:func:`atomic_write`: it is written to a temporary name in the same directory and renamed over the target,
so an interrupted write leaves the previous file (or none), never a truncated one. JSON goes through
:func:`dumps_json`: non-finite floats (a diverged loss) become ``null`` instead of the ``NaN`` that strict
parsers reject.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], Any]) -> Path:
    """Call ``write(temporary path)`` and rename the result to ``path``; on any failure the temporary file
    is removed and ``path`` is untouched. Returns ``path``."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (inf, nan) replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """Strict JSON (``allow_nan=False``) of ``value`` after :func:`finite`; non-ASCII kept as is."""
    return json.dumps(finite(value), allow_nan=False, ensure_ascii=False, **kwargs)


def write_json(path: str | os.PathLike[str], value: Any, *, indent: int | None = 2) -> Path:
    """Write ``value`` as strict JSON (see :func:`dumps_json`) to ``path`` atomically, newline-terminated."""
    return atomic_write_text(path, dumps_json(value, indent=indent) + "\n")
