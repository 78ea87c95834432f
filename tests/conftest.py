from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny tensors: on cores shared with other jobs, waking a second OpenMP
    thread for every small op costs milliseconds (and hundreds of times the op itself). Results do not depend on
    it; the thread count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tree_clip_path() -> Path:
    """The real fixture clip: a tree swaying behind a window (OpenCV sample data; see tree.avi.copyright)."""
    return DATA / "tree.avi"
