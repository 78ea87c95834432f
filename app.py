"""Generative Image Dynamics: the Gradio app (and the Hugging Face Space's entry point).

Three tabs: **Loop** (a photo -> predicted motion -> a seamless looping video at a chosen speed and length, as mp4
and GIF, a heatmap of the motion and its spectral volume), **Click to poke** (choose a point of a photo, push it,
watch the scene sway and settle; after a loop it holds that photo and its motion; or drag the photo on the live
canvas, simulated and drawn in the browser by gid_pipeline/static/live_poke.js) and **From video** (a real
clip's motion -> a loop, which can then be poked). Run ``python app.py [--checkpoint DIR] [--port N] [--share]``;
the model folder defaults to ``$GID_CHECKPOINT`` or the repository's ``assets/gid-default``.

The UI only: the math is in gid_pipeline (the pipeline predicts and renders loops and pokes, motion_controls sets
speed and amplitude, clip_motion measures clips, visualize draws the motion) and the glue (limits, caching, files)
in gid_pipeline.app_logic. Named events, callable with
gradio_client: ``/loop``, ``/poke`` and ``/from_video``.
"""

import argparse
import functools
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

from gid_pipeline import DEFAULT_CHECKPOINT, GIDInputError
from gid_pipeline import app_logic as logic
from gid_pipeline import live_poke as live
from gid_pipeline.motion.dynamics import ModalBasis
from gid_pipeline.spectral.volume import SpectralVolume

try:  # ZeroGPU Spaces: a GPU is attached only inside functions decorated with spaces.GPU
    import spaces

    gpu = spaces.GPU
except ImportError:  # anywhere else the decorator is a no-op

    def gpu(duration: int = 60) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda function: function


ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "assets" / "examples"
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
_ENGINES: dict[str, logic.MotionEngine] = {}


def resolve_checkpoint(checkpoint: str | os.PathLike[str] | None = None) -> str:
    """The model to use: the argument, else $GID_CHECKPOINT, else the repository's assets/gid-default.

    A folder is made absolute; anything else is passed on as a Hub repo id ("org/name").
    """
    chosen = checkpoint or os.environ.get("GID_CHECKPOINT") or DEFAULT_CHECKPOINT
    path = Path(chosen).expanduser()
    return str(path.resolve()) if path.exists() else str(chosen)


def engine_for(checkpoint: str) -> logic.MotionEngine:
    """The MotionEngine of a checkpoint folder (created on first use; its pipeline loads on first prediction)."""
    if checkpoint not in _ENGINES:
        _ENGINES[checkpoint] = logic.MotionEngine(checkpoint)
    return _ENGINES[checkpoint]


@gpu(duration=120)
def predict_on_device(checkpoint: str, image: np.ndarray, settings: logic.PredictionSettings) -> SpectralVolume:
    """Run the model (no cache): the only place diffusion happens."""
    return engine_for(checkpoint).compute(image, settings)


@gpu(duration=60)
def render_loop_on_device(
    checkpoint: str,
    path: str,
    gif_path: str | None,
    image: np.ndarray,
    volume: SpectralVolume,
    timing: logic.LoopTiming,
    motion_scale: float,
    learned: bool,
) -> None:
    """Render a loop into an mp4 at path (and a GIF at gif_path, if given) on the model's device, with the
    pipeline's learned renderer if asked and the checkpoint has one, else with pixel softmax splatting."""
    pipe = engine_for(checkpoint).pipeline()
    gif = Path(gif_path) if gif_path else None
    logic.render_loop_video(Path(path), pipe, image, volume, timing, motion_scale, gif_path=gif,
                            learned_renderer=learned)  # fmt: skip


def photo_input(**kwargs: Any) -> gr.Image:
    """An upload box for photos. Its events run with preprocess=False: Gradio hands on the uploaded file's payload
    untouched (after checking that it was uploaded), and gid_pipeline.media.images.read_image decodes it, so that a file
    that is no picture, or a huge one, gets a clear message instead of failing inside Gradio's own decoding."""
    return gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"], **kwargs)


def live_poke_block() -> gr.HTML:
    """The live canvas (#live-poke-canvas) with its sliders, Reset and Record: static/live_poke.js runs the
    simulation and the warp in the browser. Its value is the photo's payload (gid_pipeline.live_poke); Record fires
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
                raise gr.Error(_sentence(str(error)), title=f"Cannot {action}", print_exception=False) from None
            except torch.OutOfMemoryError:
                raise gr.Error("Out of memory: try a smaller size or fewer frames.", title=f"Cannot {action}") from None
            except Exception as error:
                log.exception("%s failed", action)
                raise gr.Error(
                    f"Internal error ({type(error).__name__}: {error}). Please report it.", title=f"Cannot {action}"
                ) from None
            finally:
                logic.release_free_memory()  # keeps the server's memory flat under a queue of requests

        return wrapper

    return decorate


def _sentence(text: str) -> str:
    """'no photo: upload ...' -> 'No photo: upload ....' (a leading file name keeps its case)."""
    first = text.split(" ", 1)[0]
    if "." not in first and "/" not in first:
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def build_demo(checkpoint: str | os.PathLike[str] | None = None) -> gr.Blocks:
    """The app's Blocks. checkpoint: a GIDPipeline folder (default $GID_CHECKPOINT, else assets/gid-default)."""
    checkpoint = resolve_checkpoint(checkpoint)
    engine = engine_for(checkpoint)
    outputs = logic.OutputFolder()
    shown_photos = logic.ShownPhotos()
    live_sent = logic.ShownPhotos()  # what each session's live canvas holds, so repeated change events send once
    logic.limit_heap_growth()  # before Gradio's worker threads allocate anything

    def predict(image: np.ndarray, settings: logic.PredictionSettings) -> SpectralVolume:
        """The photo's motion on the model-input grid, from the cache when this photo and settings were seen."""
        return engine.predict(logic.model_input(image), settings, functools.partial(predict_on_device, checkpoint))

    def video_side(size: Any) -> int:
        return logic.check_range("size", size, logic.MIN_VIDEO_SIDE, logic.MAX_VIDEO_SIDE, integer=True)

    # ---------------------------------------------------------------------------------------------- Loop
    @user_errors("make a loop")
    def make_loop(
        photo: Any,
        size: float,
        fps: float,
        duration: float,
        speed: float,
        motion_scale: float,
        steps: float,
        guidance: float,
        seed: float,
        renderer: str,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio reads the default)
    ) -> tuple[str, str, np.ndarray, str, str]:
        if renderer not in {value for _, value in RENDERERS}:
            raise GIDInputError(f"renderer must be one of {[value for _, value in RENDERERS]}, got {renderer!r}")
        image = logic.load_photo(file_path(photo))
        side = video_side(size)
        scale = logic.check_range("motion scale", motion_scale, 0.0, logic.MAX_MOTION_SCALE)
        controls = logic.LoopControls(speed=speed, fps=fps, duration=duration)
        volume = predict(image, logic.PredictionSettings(seed=seed, steps=steps, guidance=guidance))
        timing = logic.loop_timing(volume, controls)
        working = logic.fit_long_side(image, side)
        video, gif = outputs.new_path("loop", ".mp4"), outputs.new_path("loop", ".gif")
        render_loop_on_device(checkpoint, str(video), str(gif), working, volume, timing, scale, renderer == "learned")
        heatmap = logic.motion_heatmap(working, volume, scale)
        # On the model's grid, period / speed: `gid render` replays this loop at the speed it was made.
        saved = logic.played_volume(volume, timing, scale)
        spectrum = logic.storable(saved).save(outputs.new_path("spectral-volume", ".safetensors"))
        return str(video), str(gif), heatmap, str(spectrum), timing.describe()

    def carry_to_poke(photo: Any, seed: float, steps: float, guidance: float) -> tuple[Any, ...]:
        """After a loop: the poke tab takes its photo and sampling settings, so its first poke reuses the motion
        the loop predicted (the cache keys on both) instead of predicting again."""
        return file_path(photo), None, seed, steps, guidance

    # ---------------------------------------------------------------------------------------------- Poke
    @user_errors("show the photo")
    def show_poke_target(photo: Any, request: gr.Request) -> tuple[Any, Any, Any, Any]:
        """A new photo: show it for choosing a point, forget the old point. Repeated `change` events for the same
        photo (Gradio fires several) change nothing, so they cannot wipe a point clicked in between."""
        path, session = file_path(photo), request.session_hash or ""
        if not path:
            shown_photos.forget(session)
            return None, None, None, None
        if not shown_photos.claim(session, path):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        try:
            image = logic.load_photo(path)
        except Exception:
            shown_photos.forget(session)
            raise
        preview = logic.preview_image(image)
        state = {"preview": preview, "photo_size": (image.shape[1], image.shape[0])}
        return preview, state, None, None

    def marked(state: dict, x: float, y: float, direction: float, force: float) -> np.ndarray:
        """The preview with the poke's ring and arrow at photo pixel (x, y)."""
        preview = state["preview"]
        px, py = logic.to_image_pixels(x, y, state["photo_size"], (preview.shape[1], preview.shape[0]))
        return logic.draw_poke_marker(preview, px, py, logic.force_vector(direction or 0.0, force or 0.0))

    def choose_point(state: dict | None, direction: float, force: float, evt: gr.SelectData) -> tuple[Any, Any, Any]:
        """A click on the preview: store the point (in photo pixels) and draw it. Nothing heavy happens here."""
        if not state:
            return gr.skip(), gr.skip(), gr.skip()
        preview = state["preview"]
        x, y = logic.to_image_pixels(*evt.index, (preview.shape[1], preview.shape[0]), state["photo_size"])
        x, y = round(x, 1), round(y, 1)
        return x, y, marked(state, x, y, direction, force)

    def redraw_point(state: dict | None, x: Any, y: Any, direction: float, force: float) -> Any:
        """Typed coordinates or a new direction/force: move the marker."""
        if not state or x is None or y is None:
            return gr.skip()
        return marked(state, float(x), float(y), direction, force)

    def motion_for(image: np.ndarray, motion_file: Any, seed: float, steps: float, guidance: float) -> SpectralVolume:
        """The motion a poke uses: the uploaded spectral volume, else the model's prediction (cached)."""
        if file_path(motion_file):
            return SpectralVolume.load(file_path(motion_file))
        return predict(image, logic.PredictionSettings(seed=seed, steps=steps, guidance=guidance))

    @user_errors("poke")
    def poke(
        photo: Any,
        motion_file: Any,
        x: float | None,
        y: float | None,
        direction: float,
        force: float,
        damping: float,
        hold: float,
        frames: float,
        size: float,
        seed: float,
        steps: float,
        guidance: float,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio reads the default)
    ) -> str:
        image = logic.load_photo(file_path(photo))
        if x is None or y is None:
            raise GIDInputError("no point chosen: click the photo where you want to poke it")
        width, height = image.shape[1], image.shape[0]
        x, y = logic.check_range("x", x, -math.inf, math.inf), logic.check_range("y", y, -math.inf, math.inf)
        if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
            raise GIDInputError(f"the point ({x:g}, {y:g}) is outside the {width}x{height} photo")
        working = logic.fit_long_side(image, video_side(size))
        wx, wy = logic.to_image_pixels(x, y, (width, height), (working.shape[1], working.shape[0]))
        request = logic.PokeRequest(wx, wy, direction, force, damping, hold, frames)
        volume = motion_for(image, motion_file, seed, steps, guidance)
        pipe = engine.pipeline()
        return str(logic.render_poke_video(outputs.new_path("poke", ".mp4"), pipe, working, volume, request))

    @user_errors("poke live")
    def send_live_basis(
        photo: Any, motion_file: Any, seed: float, steps: float, guidance: float, request: gr.Request
    ) -> Any:
        """A new photo or motion: send its compact modal basis to the live canvas, once (Gradio repeats `change`
        events; a repeat sends nothing). Bad input shows as a message in the live block."""
        path, session = file_path(photo), request.session_hash or ""
        if not path:
            live_sent.forget(session)
            return ""
        if not live_sent.claim(session, repr((path, file_path(motion_file), seed, steps, guidance))):
            return gr.skip()
        try:
            image = logic.load_photo(path)
            volume = motion_for(image, motion_file, seed, steps, guidance)
        except GIDInputError as error:
            live_sent.forget(session)
            return live.message_payload(_sentence(str(error)))
        return live.photo_payload(logic.fit_long_side(image, live.LIVE_SIDE), volume)

    @user_errors("record the live poke")
    def record_live(
        photo: Any, motion_file: Any, size: float, seed: float, steps: float, guidance: float, evt: gr.EventData
    ) -> str:
        """Record: the live interaction rendered on the server, as the Poke button renders (full basis, softmax
        splatting), at the poke video size."""
        image = logic.load_photo(file_path(photo))
        working = logic.fit_long_side(image, video_side(size))
        interaction = live.parse_interaction(evt._data, working.shape[:2])
        basis = ModalBasis.from_volume(motion_for(image, motion_file, seed, steps, guidance), *working.shape[:2])
        return str(live.render_interaction_video(outputs.new_path("poke", ".mp4"), working, basis, interaction))

    # ---------------------------------------------------------------------------------------------- From video
    @user_errors("make a loop from the clip")
    def from_video(
        clip: str | None,
        start: float,
        duration: float,
        size: float,
        motion_scale: float,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio reads the default)
    ) -> tuple[str, str, dict]:
        request = logic.ClipRequest(start=start, duration=duration, long_side=size, motion_scale=motion_scale)
        scale = request.motion_scale
        motion, note = logic.measure_clip(clip, request)
        if note:
            gr.Warning(_sentence(note))
        video = outputs.new_path("clip-loop", ".mp4")
        timing = logic.loop_timing(motion.volume)  # the clip's window, at its own rate
        render_loop_on_device(checkpoint, str(video), None, motion.image, motion.volume, timing, scale, False)
        played = logic.played_volume(motion.volume, timing, scale)
        spectrum = logic.storable(played).save(outputs.new_path("clip-spectral-volume", ".safetensors"))
        still = logic.save_png(outputs.new_path("clip-still", ".png"), motion.image)
        return str(video), str(spectrum), {"still": str(still), "spectrum": str(spectrum)}

    def send_to_poke(state: dict | None) -> tuple[Any, Any, Any]:
        if not state:
            raise gr.Error("Make a loop from a clip first; then its motion can be poked.", print_exception=False)
        return state["still"], state["spectrum"], gr.Tabs(selected="poke")

    # ---------------------------------------------------------------------------------------------- layout
    def sampling_controls(tab: str) -> tuple[gr.Slider, gr.Slider, gr.Number]:
        """Steps, guidance (starting at the checkpoint's own default) and seed: the same in the Loop and poke tabs."""
        steps = gr.Slider(1, logic.MAX_STEPS, DEFAULT_STEPS, step=1, label="Steps", elem_id=f"{tab}-steps")
        guidance = gr.Slider(
            0, logic.MAX_GUIDANCE, engine.default_guidance, step=0.25, label="Guidance scale", elem_id=f"{tab}-guidance"
        )
        seed = gr.Number(0, precision=0, minimum=0, maximum=logic.MAX_SEED, label="Seed", elem_id=f"{tab}-seed")
        return steps, guidance, seed

    photos = [str(EXAMPLES / name) for name in EXAMPLE_PHOTOS if (EXAMPLES / name).is_file()]
    with gr.Blocks(title="Generative Image Dynamics", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            "# Generative Image Dynamics\n"
            "An open implementation of [Generative Image Dynamics](https://arxiv.org/abs/2309.07906) (Li et al., "
            "CVPR 2024): a diffusion model predicts how every pixel of a still photo oscillates (a *spectral "
            "volume*), which plays as a seamless loop or answers a poke."
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Loop", id="loop"):
                with gr.Row():
                    with gr.Column():
                        loop_photo = photo_input(label="Photo", elem_id="loop-photo")
                        if photos:
                            examples = [[p] for p in photos]
                            gr.Examples(examples, inputs=[loop_photo], cache_examples=False, elem_id="loop-examples")
                        loop_size = gr.Slider(
                            logic.MIN_VIDEO_SIDE,
                            logic.MAX_VIDEO_SIDE,
                            DEFAULT_SIZE,
                            step=32,
                            label="Video size (longer side, px)",
                            elem_id="loop-size",
                        )
                        loop_scale = gr.Slider(
                            0, logic.MAX_MOTION_SCALE, 1.0, step=0.1, label="Motion strength (amplitude factor)"
                        )
                        loop_speed = gr.Slider(
                            logic.MIN_SPEED,
                            logic.MAX_SPEED,
                            1.0,
                            step=0.05,
                            label="Speed (2 plays the motion twice as fast: the 5 s loop lasts 2.5 s)",
                            elem_id="loop-speed",
                        )
                        loop_duration = gr.Slider(
                            1,
                            logic.MAX_LOOP_SECONDS,
                            DEFAULT_DURATION,
                            step=0.5,
                            label="Video length (s; whole loops, so the file loops seamlessly)",
                            elem_id="loop-duration",
                        )
                        loop_fps = gr.Slider(
                            logic.MIN_FPS,
                            logic.MAX_FPS,
                            DEFAULT_FPS,
                            step=1,
                            label="Frame rate (fps; more is smoother and slower to render)",
                            elem_id="loop-fps",
                        )
                        with gr.Accordion("Sampling", open=False):
                            loop_steps, loop_guidance, loop_seed = sampling_controls("loop")
                            loop_renderer = gr.Radio(
                                RENDERERS, value="learned" if engine.device == "cuda" else "pixel", label="Renderer"
                            )
                        loop_button = gr.Button("Animate", variant="primary", elem_id="loop-button")
                    with gr.Column():
                        loop_video = gr.Video(
                            label="Seamless loop",
                            autoplay=True,
                            loop=True,
                            interactive=False,
                            buttons=["download"],
                            elem_id="loop-video",
                        )
                        loop_info = gr.Markdown(elem_id="loop-info")
                        with gr.Row():
                            loop_gif = gr.File(
                                label=f"GIF (one loop, at most {logic.GIF_SIDE} px and {logic.GIF_FPS:g} fps)",
                                interactive=False,
                                elem_id="loop-gif",
                            )
                            loop_spectrum = gr.File(label="Spectral volume (.safetensors)", interactive=False)
                        loop_heatmap = gr.Image(
                            label="Predicted motion: how far each pixel swings (RMS displacement over the loop)",
                            interactive=False,
                            type="numpy",
                            format="png",
                            elem_id="loop-heatmap",
                        )

            with gr.Tab("Click to poke", id="poke"):
                with gr.Row():
                    with gr.Column():
                        poke_photo = photo_input(label="Photo", elem_id="poke-photo")
                        if photos:
                            gr.Examples([[p] for p in photos], inputs=[poke_photo], cache_examples=False)
                        poke_motion = gr.File(
                            label="Motion (optional .safetensors spectral volume; empty: the model predicts it)",
                            file_types=[".safetensors"],
                            type="filepath",
                        )
                        with gr.Accordion("Sampling (when the model predicts)", open=False):
                            poke_steps, poke_guidance, poke_seed = sampling_controls("poke")
                        gr.Markdown(
                            "**Live**: drag the photo below; it moves in your browser, at its frame rate. Record "
                            "renders your last interaction on the server as a video (under Response)."
                        )
                        live_poke = live_poke_block()
                    with gr.Column():
                        poke_target = gr.Image(
                            label="Click where to poke",
                            interactive=False,
                            type="numpy",
                            format="png",
                            elem_id="poke-target",
                        )
                        with gr.Row():
                            poke_x = gr.Number(None, label="x (photo px)", elem_id="poke-x")
                            poke_y = gr.Number(None, label="y (photo px)", elem_id="poke-y")
                        poke_direction = gr.Slider(0, 360, 0, step=5, label="Direction (degrees: 0 right, 90 up)")
                        poke_force = gr.Slider(0, 50, 10, step=1, label="Force (about how far the point moves, px)")
                        poke_damping = gr.Slider(0, logic.MAX_DAMPING, 0.2, step=0.05, label="Damping")
                        poke_hold = gr.Slider(
                            0,
                            logic.MAX_HOLD_SECONDS,
                            0,
                            step=0.1,
                            label="Hold (s): drag this long, then let go; 0 is a flick",
                        )
                        with gr.Row():
                            poke_frames = gr.Slider(
                                logic.MIN_FRAMES,
                                logic.MAX_FRAMES,
                                logic.POKE_FRAMES,
                                step=1,
                                label="Frames (30 fps)",
                                elem_id="poke-frames",
                            )
                            poke_size = gr.Slider(
                                logic.MIN_VIDEO_SIDE,
                                logic.MAX_VIDEO_SIDE,
                                logic.POKE_SIDE,
                                step=32,
                                label="Video size (longer side, px)",
                                elem_id="poke-size",
                            )
                        poke_button = gr.Button("Poke", variant="primary", elem_id="poke-button")
                        poke_video = gr.Video(label="Response", autoplay=True, interactive=False, elem_id="poke-video")
                gr.Markdown(
                    "The interactive dynamics follow Davis et al.'s image-space modal bases, which MIT has patented "
                    "(US 10,354,397); check whether the patent affects your use."
                )
                poke_state = gr.State(None, time_to_live=STATE_TTL_SECONDS)

            with gr.Tab("From video", id="from_video"):
                with gr.Row():
                    with gr.Column():
                        clip = gr.Video(
                            label="Clip of something swaying (camera still)", sources=["upload"], include_audio=True
                        )
                        clip_start = gr.Number(0, minimum=0, maximum=logic.MAX_CLIP_START_SECONDS, label="Start (s)")
                        clip_duration = gr.Slider(1, logic.MAX_CLIP_SECONDS, 5, step=0.1, label="Loop length (s)")
                        if (EXAMPLES / EXAMPLE_CLIP).is_file():
                            gr.Examples(
                                [[str(EXAMPLES / EXAMPLE_CLIP), 0, 3.6]],
                                inputs=[clip, clip_start, clip_duration],
                                cache_examples=False,
                            )
                        clip_size = gr.Slider(
                            logic.MIN_VIDEO_SIDE,
                            logic.MAX_CLIP_SIDE,
                            320,
                            step=32,
                            label="Size (longer side, px)",
                            elem_id="clip-size",
                        )
                        clip_scale = gr.Slider(0, logic.MAX_MOTION_SCALE, 1.0, step=0.1, label="Motion scale")
                        clip_button = gr.Button("Make a loop", variant="primary")
                    with gr.Column():
                        clip_video = gr.Video(
                            label="Seamless loop", autoplay=True, loop=True, interactive=False, elem_id="clip-video"
                        )
                        clip_spectrum = gr.File(label="Spectral volume (.safetensors)", interactive=False)
                        clip_send = gr.Button("Poke this motion", elem_id="clip-send")
                clip_state = gr.State(None, time_to_live=STATE_TTL_SECONDS)

        loop_event = loop_button.click(
            make_loop,
            [
                loop_photo,
                loop_size,
                loop_fps,
                loop_duration,
                loop_speed,
                loop_scale,
                loop_steps,
                loop_guidance,
                loop_seed,
                loop_renderer,
            ],
            [loop_video, loop_gif, loop_heatmap, loop_spectrum, loop_info],
            api_name="loop",
            concurrency_id="model",
            concurrency_limit=1,
            preprocess=False,
        )
        loop_event.success(
            carry_to_poke,
            [loop_photo, loop_seed, loop_steps, loop_guidance],
            [poke_photo, poke_motion, poke_seed, poke_steps, poke_guidance],
            api_visibility="private",
            concurrency_limit=None,
            show_progress="hidden",
            preprocess=False,
        )
        poke_photo.change(
            show_poke_target,
            [poke_photo],
            [poke_target, poke_state, poke_x, poke_y],
            api_visibility="private",
            concurrency_limit=None,
            show_progress="minimal",
            preprocess=False,
        )
        poke_target.select(
            choose_point,
            [poke_state, poke_direction, poke_force],
            [poke_x, poke_y, poke_target],
            api_visibility="private",
            concurrency_limit=None,
            show_progress="hidden",
        )
        gr.on(
            [poke_x.input, poke_y.input, poke_direction.input, poke_force.input],
            redraw_point,
            [poke_state, poke_x, poke_y, poke_direction, poke_force],
            [poke_target],
            api_visibility="private",
            concurrency_limit=None,
            show_progress="hidden",
        )
        poke_button.click(
            poke,
            [
                poke_photo,
                poke_motion,
                poke_x,
                poke_y,
                poke_direction,
                poke_force,
                poke_damping,
                poke_hold,
                poke_frames,
                poke_size,
                poke_seed,
                poke_steps,
                poke_guidance,
            ],
            [poke_video],
            api_name="poke",
            concurrency_id="model",
            preprocess=False,
        )
        gr.on(
            [poke_photo.change, poke_motion.change],
            send_live_basis,
            [poke_photo, poke_motion, poke_seed, poke_steps, poke_guidance],
            [live_poke],
            api_visibility="private",
            concurrency_id="model",
            show_progress="minimal",
            preprocess=False,
        )
        live_poke.record(
            record_live,
            [poke_photo, poke_motion, poke_size, poke_seed, poke_steps, poke_guidance],
            [poke_video],
            api_visibility="private",
            concurrency_id="model",
            preprocess=False,
        )
        clip_button.click(
            from_video,
            [clip, clip_start, clip_duration, clip_size, clip_scale],
            [clip_video, clip_spectrum, clip_state],
            api_name="from_video",
            concurrency_id="flow",
            concurrency_limit=1,
        )
        clip_send.click(
            send_to_poke,
            [clip_state],
            [poke_photo, poke_motion, tabs],
            api_visibility="private",
            concurrency_limit=None,
        )
    demo.queue(max_size=32, default_concurrency_limit=1)
    return demo


def launch(demo: gr.Blocks, **kwargs: Any) -> Any:
    """Launch with the app's server limits (upload size, served folders); kwargs go to Blocks.launch."""
    return demo.launch(max_file_size=logic.MAX_UPLOAD_BYTES, allowed_paths=[str(EXAMPLES)], **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Generative Image Dynamics app.")
    parser.add_argument("--checkpoint", help="GIDPipeline folder (default: $GID_CHECKPOINT or assets/gid-default)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME"), help="address to listen on")
    parser.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    demo = build_demo(args.checkpoint)
    if "spaces" in globals():  # ZeroGPU: load at startup (its workers do not keep what a call loads)
        engine_for(resolve_checkpoint(args.checkpoint)).pipeline()
    launch(demo, server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
