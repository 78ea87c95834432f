"""gid_pipeline: an open implementation of Generative Image Dynamics (Li et al., CVPR 2024)."""

from .errors import GIDInputError

__version__ = "0.1.0"

__all__ = ["GIDInputError", "__version__"]
