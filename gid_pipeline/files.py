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

from .errors import GIDInputError

# Temporary siblings are hidden and end in this, so that a crashed writer's leftovers are recognisable.
PARTIAL_SUFFIX = ".part"


class CloseOrAbort:
    """A writer as a context manager: ``close()`` when the block ends normally, ``abort()`` (drop the partial
    file) when it ends by an exception. Subclasses define both."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def check_output(path: str | os.PathLike[str], folder: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written: it is not a folder (for ``folder=True``: not a file),
    its nearest existing ancestor is a writable folder. Missing parent folders are created when writing (every
    command alike). Returns the path.

    Raises:
        GIDInputError: naming the path and the problem.
    """
    path = Path(path)
    if path.is_dir() and not folder:
        raise GIDInputError(f"cannot write {path}: it is a folder")
    if path.exists() and folder and not path.is_dir():
        raise GIDInputError(f"cannot write into {path}: it is a file, not a folder")
    ancestor = path if folder and path.is_dir() else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise GIDInputError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise GIDInputError(f"cannot write {path}: folder {ancestor} is not writable")
    return path


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
