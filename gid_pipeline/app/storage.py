"""The files the app writes for its outputs: one folder, names that never collide, old files swept."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

OUTPUT_MAX_AGE_SECONDS = 3600.0
"""Files the app wrote are deleted once this old (Gradio serves its own copies)."""


class OutputFolder:
    """A folder under the system temp dir (which Gradio may serve from) for the files the app writes.

    Each new path sweeps away files older than ``max_age`` seconds, so a long-running Space does not fill its
    disk; Gradio has copied any file it served into its own cache by then.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, max_age: float = OUTPUT_MAX_AGE_SECONDS):
        self.root = Path(root) if root is not None else Path(tempfile.gettempdir()) / "gid_app"
        self.max_age = max_age

    def new_path(self, stem: str, suffix: str) -> Path:
        """A fresh path ``<root>/<stem>-<random><suffix>`` (the file itself is not created)."""
        self.root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - self.max_age
        for old in self.root.iterdir():
            try:
                if old.is_file() and old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:  # another request removed it first
                pass
        return self.root / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"


def save_png(path: Path, image: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 as a PNG at path (the still a From-video loop starts from)."""
    Image.fromarray(image).save(path)
    return path
