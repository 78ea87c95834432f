"""gid_pipeline: an open implementation of Generative Image Dynamics (Li et al., CVPR 2024).

``GIDPipeline``, ``GIDPipelineOutput`` and the ``export_to_*`` helpers are imported on first use (they pull in
diffusers, or the video writer), so that importing the package, e.g. for the command line, stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GIDInputError

if TYPE_CHECKING:
    from .media.export import export_to_gif, export_to_mp4, export_to_video, export_to_webm
    from .pipeline_gid import GIDPipeline, GIDPipelineOutput

__version__ = "0.1.0"

# The pipeline folder shipped with the repository (written by GIDPipeline.save_pretrained).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "gid-default"

# name -> the submodule it is imported from on first use
_LAZY = {
    "GIDPipeline": "pipeline_gid",
    "GIDPipelineOutput": "pipeline_gid",
    "export_to_gif": "media.export",
    "export_to_mp4": "media.export",
    "export_to_video": "media.export",
    "export_to_webm": "media.export",
}

__all__ = [
    "DEFAULT_CHECKPOINT",
    "GIDInputError",
    "GIDPipeline",
    "GIDPipelineOutput",
    "__version__",
    "export_to_gif",
    "export_to_mp4",
    "export_to_video",
    "export_to_webm",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
