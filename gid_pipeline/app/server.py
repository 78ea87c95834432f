"""The app's server side: the model engine per checkpoint, the functions that run on a GPU (ZeroGPU Spaces), how
errors reach the user, and the command line (``python app.py``)."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch
from gradio.components.image_editor import EditorData

from .. import DEFAULT_CHECKPOINT
from ..errors import GIDInputError
from ..limits import APP_MAX_UPLOAD_BYTES
from ..player import PlaybackControls
from ..spectral.volume import SpectralVolume
from . import live
from .brush import PaintedMask, painted_mask
from .engine import MotionEngine, PredictionSettings
from .loops import render_loop_video
from .memory import release_free_memory

try:  # ZeroGPU Spaces: a GPU is attached only inside functions decorated with spaces.GPU
    import spaces

    gpu = spaces.GPU
except ImportError:  # anywhere else the decorator is a no-op

    def gpu(duration: int = 60) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda function: function


EXAMPLES = DEFAULT_CHECKPOINT.parent / "examples"  # the repository's assets/examples
EXAMPLE_PHOTOS = ["meadow.jpg", "dandelion.jpg", "ladybird.jpg", "marigold.jpg", "forest_path.jpg"]
EXAMPLE_CLIP = "tree.mp4"
DEFAULT_STEPS = 25
DEFAULT_SIZE = 512
DEFAULT_FPS = 30.0
DEFAULT_DURATION = 5.0  # seconds: one period of the model's 5 s loop at speed 1
# A session's photo and clip motion (up to ~20 MB) are dropped this long after their last update, so a long-running
# server's memory does not grow with the number of visitors.
STATE_TTL_SECONDS = 3600
# The learned renderer (the checkpoint's, when it has one) is the paper's; on two CPU cores it costs about 0.4 s per
# 512 px frame (a minute per loop), so the app offers it by default only on a GPU.
RENDERERS = [("learned (the checkpoint's; slow on a CPU)", "learned"), ("pixel softmax splatting (fast)", "pixel")]
log = logging.getLogger("gid_app")

# One engine (pipeline + prediction cache) per checkpoint folder, shared by every demo built in this process.
# Functions that run on a GPU look it up by path: a path is cheap to hand to a ZeroGPU worker, a pipeline is not.
_ENGINES: dict[str, MotionEngine] = {}


def resolve_checkpoint(checkpoint: str | os.PathLike[str] | None = None) -> str:
    """The model to use: the argument, else $GID_CHECKPOINT, else the repository's assets/gid-default.

    A folder is made absolute; anything else is passed on as a Hub repo id ("org/name").
    """
    chosen = checkpoint or os.environ.get("GID_CHECKPOINT") or DEFAULT_CHECKPOINT
    path = Path(chosen).expanduser()
    return str(path.resolve()) if path.exists() else str(chosen)


def engine_for(checkpoint: str) -> MotionEngine:
    """The MotionEngine of a checkpoint folder (created on first use; its pipeline loads on first prediction)."""
    if checkpoint not in _ENGINES:
        _ENGINES[checkpoint] = MotionEngine(checkpoint)
    return _ENGINES[checkpoint]


@gpu(duration=120)
def predict_on_device(checkpoint: str, image: np.ndarray, settings: PredictionSettings) -> SpectralVolume:
    """Run the model (no cache): the only place diffusion happens."""
    return engine_for(checkpoint).compute(image, settings)


@gpu(duration=60)
def render_loop_on_device(
    checkpoint: str,
    path: str,
    gif_path: str | None,
    image: np.ndarray,
    volume: SpectralVolume,
    controls: PlaybackControls,
    learned: bool,
) -> str:
    """Render a loop into an mp4 at path (and a GIF at gif_path, if given) on the model's device, with the
    checkpoint's learned renderer if asked and it has one, else with pixel softmax splatting; no diffusion model
    is loaded for it. Returns the loop's timing, described for the user."""
    player = engine_for(checkpoint).player()
    gif = Path(gif_path) if gif_path else None
    timing = render_loop_video(Path(path), player, image, volume, controls, gif_path=gif, learned_renderer=learned)
    return timing.describe()


def photo_input(**kwargs: Any) -> gr.Image:
    """An upload box for photos. Its events run with preprocess=False: Gradio hands on the uploaded file's payload
    untouched (after checking that it was uploaded), and gid_pipeline.media.images.read_image decodes it, so that a file
    that is no picture, or a huge one, gets a clear message instead of failing inside Gradio's own decoding."""
    return gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"], **kwargs)


BRUSH_SIDE = 512
"""Longer side of the photo shown under the motion brush (never enlarged): the model reads the mask at 256 px."""


def brush_editor(**kwargs: Any) -> gr.ImageEditor:
    """The motion brush: an editor whose background is the Loop photo (set by the app, not uploaded), with a
    white and a black brush and an eraser on one layer; no crop or resize, so the painting keeps the photo's shape.
    brush.painted_mask reads its value."""
    return gr.ImageEditor(
        type="numpy",
        image_mode="RGBA",
        sources=[],
        transforms=[],
        layers=False,
        brush=gr.Brush(colors=["#ffffff", "#000000"], default_color="#ffffff", color_mode="fixed"),
        format="png",
        **kwargs,
    )


def brush_mask(editor: gr.ImageEditor, payload: Any, engine: MotionEngine, image: np.ndarray) -> PaintedMask | None:
    """What the motion brush asks of the model for a photo ((H, W, 3) uint8): the painting in the editor's raw
    payload (an event run with preprocess=False), or None when nothing was painted, or when the checkpoint takes
    no motion masks (then with a warning: the loop is made without it).

    Raises:
        GIDInputError: an unreadable payload, or a painting of another aspect ratio than the photo's (before any
            diffusion).
    """
    if not payload:
        return None
    try:  # Gradio's own preprocessing, which also collects the layers the browser uploaded beforehand (by id)
        value = editor.preprocess(EditorData.model_validate(payload))
    except (OSError, ValueError) as error:  # a client's file that is no picture, or a malformed payload
        raise GIDInputError(f"the motion brush's painting cannot be read ({type(error).__name__})") from None
    mask = painted_mask(value)
    if mask is not None and not engine.takes_motion_mask:
        gr.Warning("This checkpoint was not trained with a motion brush; the painting is ignored.")
        return None
    if mask is not None:
        mask.fitted(*image.shape[:2])  # raises for another aspect ratio
    return mask


def live_poke_block() -> gr.HTML:
    """The live canvas (#live-poke-canvas) with its sliders, Reset and Record: static/live_poke.js runs the
    simulation and the warp in the browser. Its value is the photo's payload (gid_pipeline.app.live); Record fires
    its "record" event with the interaction."""
    script = live.browser_script() + "\nmountLivePokeInGradio(element, trigger, props, watch);"
    return gr.HTML(None, html_template="", js_on_load=script, elem_id="live-poke")


def file_path(payload: Any) -> str | None:
    """The server path of an input file, from a preprocessed value (a path) or a raw payload (preprocess=False)."""
    if payload is None or isinstance(payload, str):
        return payload or None
    if isinstance(payload, dict):
        return payload.get("path")
    return getattr(payload, "path", None)


def user_errors(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn exceptions into a message in the UI (never a traceback); the outputs keep their earlier values.

    Bad input (GIDInputError) shows its own message; running out of memory says what to lower; anything else is
    logged with its traceback on the server and shown as a short internal error.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except gr.Error:
                raise
            except GIDInputError as error:
                raise gr.Error(sentence(str(error)), title=f"Cannot {action}", print_exception=False) from None
            except torch.OutOfMemoryError:
                raise gr.Error("Out of memory: try a smaller size or fewer frames.", title=f"Cannot {action}") from None
            except Exception as error:
                log.exception("%s failed", action)
                raise gr.Error(
                    public_message(f"Internal error ({type(error).__name__}: {error}). Please report it."),
                    title=f"Cannot {action}",
                ) from None
            finally:
                release_free_memory()  # keeps the server's memory flat under a queue of requests

        return wrapper

    return decorate


# An absolute path in a message: the server's folders are nobody's business, the file's name is what a user knows.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/:'\"(),]+/)+([^\s/:'\"(),]+)")


def public_message(text: str) -> str:
    """A message with every absolute path cut to its file name ('/tmp/gradio/3f/notes.png: ...' -> 'notes.png: ...')."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def sentence(text: str) -> str:
    """'no photo: upload ...' -> 'No photo: upload ....' (a leading file name keeps its case); server paths cut."""
    text = public_message(text)
    first = text.split(" ", 1)[0]
    if "." not in first and "/" not in first:
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def launch(demo: gr.Blocks, **kwargs: Any) -> Any:
    """Launch with the app's server limits (upload size, served folders); kwargs go to Blocks.launch."""
    return demo.launch(max_file_size=APP_MAX_UPLOAD_BYTES, allowed_paths=[str(EXAMPLES)], **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Generative Image Dynamics app.")
    parser.add_argument("--checkpoint", help="GIDPipeline folder (default: $GID_CHECKPOINT or assets/gid-default)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME"), help="address to listen on")
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from .ui import build_demo  # the page imports this module

    demo = build_demo(args.checkpoint)
    if "spaces" in globals():  # ZeroGPU: load at startup (its workers do not keep what a call loads)
        engine_for(resolve_checkpoint(args.checkpoint)).pipeline()
    launch(demo, server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
