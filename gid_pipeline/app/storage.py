"""The files the app writes for its outputs: one folder per browser session inside Gradio's cache, names that never
collide, a session's files deleted when it ends and any file swept once old."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image

OUTPUT_MAX_AGE_SECONDS = 3600.0
"""Files the app wrote are deleted once this old, whether or not their session has ended."""
SHARED_SESSION = "shared"
"""The folder of files made outside a browser session (a call without a session hash)."""
_SAFE_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")


def session_folder_name(session: str | None) -> str:
    """The folder name of a session hash: the hash itself when it is a plain token (Gradio's are), else a digest of
    it, so a client's session string can never name a path outside the output folder."""
    if not session:
        return SHARED_SESSION
    if _SAFE_SESSION.fullmatch(session) and session != SHARED_SESSION:
        return session
    return "h" + hashlib.sha256(session.encode()).hexdigest()[:32]


class OutputFolder:
    """The folder of the app's output files: ``<root>/<session>/<stem>-<random><suffix>``.

    By default root is inside Gradio's cache folder (``GRADIO_TEMP_DIR``, else ``<tmp>/gradio``), so Gradio serves
    each file from where it was written instead of keeping a second copy. ``end_session`` deletes a session's
    files (the app calls it when the browser tab closes); each new path also sweeps files older than ``max_age``
    seconds, for sessions that never say goodbye (API clients, crashed browsers).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, max_age: float = OUTPUT_MAX_AGE_SECONDS):
        self.root = Path(root) if root is not None else Path(get_upload_folder()) / "gid_app"
        self.max_age = max_age

    def new_path(self, stem: str, suffix: str, session: str | None = None) -> Path:
        """A fresh path in the session's folder (created; the file itself is not)."""
        folder = self.root / session_folder_name(session)
        folder.mkdir(parents=True, exist_ok=True)
        self.sweep()
        return folder / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"

    def sweep(self) -> None:
        """Delete files older than max_age, and session folders left empty by it (not ones just made)."""
        cutoff = time.time() - self.max_age
        for folder in [self.root, *(path for path in self.root.iterdir() if path.is_dir())]:
            try:
                # A folder unchanged since the cutoff holds only old files: emptied now, it goes too.
                stale = folder.stat().st_mtime < cutoff
                for old in folder.iterdir():
                    if old.is_file() and old.stat().st_mtime < cutoff:
                        old.unlink()
                if folder != self.root and stale and not any(folder.iterdir()):
                    folder.rmdir()
            except OSError:  # another request removed it first
                pass

    def end_session(self, session: str | None) -> None:
        """Delete every file of a session that has ended (a missing folder is fine)."""
        if session:
            shutil.rmtree(self.root / session_folder_name(session), ignore_errors=True)

    def usage(self) -> tuple[int, int]:
        """(files, bytes) under the folder now."""
        if not self.root.is_dir():
            return 0, 0
        sizes = []
        for path in self.root.rglob("*"):
            try:
                if path.is_file():
                    sizes.append(path.stat().st_size)
            except OSError:  # deleted meanwhile
                pass
        return len(sizes), sum(sizes)


def save_png(path: Path, image: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 as a PNG at path (the still a From-video loop starts from)."""
    Image.fromarray(image).save(path)
    return path
