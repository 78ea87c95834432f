"""Generative Image Dynamics: the Gradio app (and the Hugging Face Space's entry point).

Run ``python app.py [--checkpoint DIR_OR_REPO] [--host 0.0.0.0] [--port 7860] [--share]``. The app itself lives in
the package (gid_pipeline.app: the page in ``ui``, the server side in ``server``); this file is what a Space runs.
"""

from gid_pipeline.app import build_demo, launch, main
from gid_pipeline.app.server import (
    DEFAULT_DURATION,
    DEFAULT_FPS,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    engine_for,
    resolve_checkpoint,
)

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

if __name__ == "__main__":
    main()
