"""The Gradio app: Loop, Click-to-poke (with the live canvas) and From-video tabs. Needs the ``app`` extra
(``pip install 'gid_pipeline[app]'``); importing gid_pipeline itself never loads Gradio.

build_demo(checkpoint) makes the page; launch(demo) serves it with the app's limits; main() is ``python app.py``.
"""

from ..extras import require

require("gradio", "matplotlib")

from .server import (  # noqa: E402 (after the check that says which extra is missing)
    DEFAULT_DURATION,
    DEFAULT_FPS,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    engine_for,
    launch,
    main,
    resolve_checkpoint,
)
from .ui import build_demo  # noqa: E402

__all__ = [
    "DEFAULT_DURATION",
    "DEFAULT_FPS",
    "DEFAULT_SIZE",
    "DEFAULT_STEPS",
    "build_demo",
    "engine_for",
    "launch",
    "main",
    "resolve_checkpoint",
]
