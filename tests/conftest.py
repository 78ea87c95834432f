from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tree_clip_path() -> Path:
    """The real fixture clip: a tree swaying behind a window (OpenCV sample data; see tree.avi.copyright)."""
    return DATA / "tree.avi"
