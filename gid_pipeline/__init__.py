"""gid_pipeline: an open implementation of Generative Image Dynamics (Li et al., CVPR 2024).

``GIDPipeline`` and ``GIDPipelineOutput`` are imported on first use (they pull in diffusers), so that importing the
package, e.g. for the command line, stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GIDInputError

if TYPE_CHECKING:
    from .pipeline_gid import GIDPipeline, GIDPipelineOutput

__version__ = "0.1.0"

# The pipeline folder shipped with the repository (written by GIDPipeline.save_pretrained).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "gid-default"

_LAZY = {"GIDPipeline", "GIDPipelineOutput"}

__all__ = ["DEFAULT_CHECKPOINT", "GIDInputError", "GIDPipeline", "GIDPipelineOutput", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        from . import pipeline_gid

        return getattr(pipeline_gid, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
