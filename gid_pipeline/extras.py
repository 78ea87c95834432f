"""Optional dependencies: the app (``[app]``) and training (``[train]``) extras, checked where they are needed so
that a missing one is one clear line naming what to install (``pip install gid_pipeline`` alone has neither)."""

from __future__ import annotations

import importlib.util

from .errors import GIDInputError

EXTRAS = {"gradio": "app", "yaml": "app", "matplotlib": "train", "accelerate": "train"}


def require(*modules: str) -> None:
    """GIDInputError naming the extra to install if any of these modules is missing."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        extras = sorted({EXTRAS.get(name, "app") for name in missing})
        raise GIDInputError(
            f"this needs {', '.join(missing)}: pip install 'gid_pipeline[{','.join(extras)}]'"
        )
