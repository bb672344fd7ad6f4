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

_BOM = b"\xef\xbb\xbf"


def read_utf8(path: str | os.PathLike[str]) -> str:
    """The text of ``path`` decoded as UTF-8 (a leading byte-order mark is dropped); bytes that are not UTF-8
    are a :class:`UnicodeError` whose message names the byte, its offset in the file and its line."""
    data = Path(path).read_bytes()
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        line = data[:at].count(b"\n") + 1
        raise UnicodeError(
            f"byte 0x{data[at]:02x} at offset {at} (line {line}) cannot be decoded ({exc.reason}); "
            "save the file as UTF-8"
        ) from None


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


# ---- output directories ---------------------------------------------------------------------------
LOCK_NAME = ".llm-adapters.lock"


def check_output_dir(path: str | os.PathLike[str], *, what: str, need_bytes: int = 0, create: bool = True) -> Path:
    """Make sure ``path`` can receive output before any long work: not a file, creatable and writable, with
    ``need_bytes`` free. Creates the directory (with ``create=False``, checks the nearest existing folder
    above it instead and creates nothing). Raises :class:`OutputError` naming the problem and the fix."""
    from .errors import OutputError

    out = Path(path).expanduser()
    for above in out.parents:
        if above.exists() and not above.is_dir():
            raise OutputError(f"{what}: {str(above)!r} (above the output {str(out)!r}) is a file, not a directory")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{what}: the output {str(out)!r} is a file, not a directory; choose a directory")
    where = out
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{what}: cannot create the output directory {str(out)!r}: {exc.strerror or exc}"
            ) from None
    else:
        where = next(p for p in (out, *out.parents) if p.exists())
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"{what}: the output directory {str(out)!r} is not writable ({exc.strerror or exc}); choose another "
            "directory or fix its permissions"
        ) from None
    if need_bytes:
        import shutil

        free = shutil.disk_usage(where).free
        if free < need_bytes:
            raise OutputError(
                f"{what}: {str(out)!r} has {free / 2**20:.0f} MiB free, and {need_bytes / 2**20:.0f} MiB are needed; "
                "free some space or choose another directory"
            )
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _age(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


class OutputLock:
    """One writer per output directory: a lock file holding the owner's pid, host and command, created
    atomically (``O_EXCL``). A second writer gets a clear error at once; a lock left by a process that no
    longer runs on this host is stale and taken over (with a note). Use as a context manager."""

    def __init__(self, directory: str | os.PathLike[str], what: str) -> None:
        self.path = Path(directory) / LOCK_NAME
        self.what = what
        self.held = False

    def __enter__(self) -> OutputLock:
        import json
        import socket
        import warnings

        from .errors import OutputError

        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.what}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    owner = {}
                here = owner.get("host") == me["host"] and isinstance(owner.get("pid"), int)
                empty = not owner and self.path.stat().st_size == 0  # created, then the writer died
                stale = (here and not _alive(owner["pid"])) or (empty and _age(self.path) > 10)
                if stale:
                    warnings.warn(
                        f"llm-adapters: removing a stale lock in {self.path.parent} (left by "
                        f"{owner.get('command', '?')}, pid {owner.get('pid', '?')}, which no longer runs)",
                        stacklevel=2,
                    )
                    self.path.unlink(missing_ok=True)
                    continue
                raise OutputError(
                    f"{self.what}: {str(self.path.parent)!r} is being written by another run ({owner.get('command')}, "
                    f"pid {owner.get('pid')} on {owner.get('host')}); wait for it to finish or choose another output "
                    f"directory (if that run is gone, delete {self.path})"
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            self.held = True
            return self
        raise OutputError(f"{self.what}: could not take the lock {self.path}")

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
