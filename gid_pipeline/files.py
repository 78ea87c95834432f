"""Atomic file writes: a file at its path is always complete, whatever interrupts the writer (an error, Ctrl-C,
SIGTERM handled as an exception, a full disk)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Temporary siblings are hidden and end in this, so that a crashed writer's leftovers are recognisable.
PARTIAL_SUFFIX = ".part"


def partial_path(path: str | os.PathLike[str]) -> Path:
    """A hidden, unique sibling of ``path`` on the same file system (so that renaming it over ``path`` is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling to write; on success it replaces ``path``, on any exception it is deleted.

    The parent folder must exist (creating folders is the caller's decision).
    """
    target = Path(path)
    temporary = partial_path(target)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bytes atomically, flushed to disk first; file modes follow the umask."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], content: Any) -> Path:
    """JSON (indented, keys sorted, a final newline), written atomically."""
    return write_bytes_atomic(path, (json.dumps(content, indent=1, sort_keys=True) + "\n").encode())
