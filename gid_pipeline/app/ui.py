"""The app's page: the Loop, Click-to-poke and From-video tabs, their controls and their events (named events
``/loop``, ``/poke`` and ``/from_video`` work with gradio_client). The handlers only orchestrate: the work is in
the app's modules and in the library."""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import gradio as gr
import numpy as np

from ..checks import check_number
from ..errors import GIDInputError
from ..limits import (
    APP_MAX_AMPLITUDE,
    APP_MAX_CLIP_SECONDS,
    APP_MAX_CLIP_SIDE,
    APP_MAX_CLIP_START_SECONDS,
    APP_MAX_DAMPING,
    APP_MAX_FPS,
    APP_MAX_FRAMES,
    APP_MAX_GUIDANCE,
    APP_MAX_HOLD_SECONDS,
    APP_MAX_LOOP_SECONDS,
    APP_MAX_SEED,
    APP_MAX_SPEED,
    APP_MAX_STEPS,
    APP_MAX_VIDEO_SIDE,
    APP_MIN_FPS,
    APP_MIN_FRAMES,
    APP_MIN_SPEED,
    APP_MIN_VIDEO_SIDE,
)
from ..media.images import fit_long_side
from ..motion.dynamics import ModalBasis
from ..spectral.volume import SpectralVolume
from . import live
from .clips import ClipRequest, measure_clip
from .engine import PredictionSettings, model_input, storable
from .loops import GIF_FPS, GIF_SIDE, app_timing, loop_controls, motion_heatmap
from .memory import limit_heap_growth
from .photos import draw_poke_marker, force_vector, load_photo, preview_image, to_image_pixels
from .pokes import POKE_FRAMES, POKE_SIDE, PokeRequest, render_poke_video
from .server import (
    BRUSH_SIDE,
    DEFAULT_DURATION,
    DEFAULT_FPS,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    EXAMPLE_CLIP,
    EXAMPLE_PHOTOS,
    EXAMPLES,
    RENDERERS,
    STATE_TTL_SECONDS,
    brush_editor,
    brush_mask,
    engine_for,
    file_path,
    live_poke_block,
    photo_input,
    predict_on_device,
    render_loop_on_device,
    resolve_checkpoint,
    sentence,
    user_errors,
)
from .sessions import ShownPhotos
from .storage import OutputFolder, save_png


def build_demo(checkpoint: str | os.PathLike[str] | None = None) -> gr.Blocks:
    """The app's Blocks. checkpoint: a GIDPipeline folder (default $GID_CHECKPOINT, else assets/gid-default)."""
    checkpoint = resolve_checkpoint(checkpoint)
    engine = engine_for(checkpoint)
    outputs = OutputFolder()
    shown_photos = ShownPhotos()
    live_sent = ShownPhotos()  # what each session's live canvas holds, so repeated change events send once
    brush_photos = ShownPhotos()  # the photo under each session's motion brush, likewise
    limit_heap_growth()  # before Gradio's worker threads allocate anything

    def predict(image: np.ndarray, settings: PredictionSettings) -> SpectralVolume:
        """The photo's motion on the model-input grid, from the cache when this photo and settings were seen."""
        return engine.predict(model_input(image), settings, functools.partial(predict_on_device, checkpoint))

    def video_side(size: Any) -> int:
        return check_number("size", size, APP_MIN_VIDEO_SIDE, APP_MAX_VIDEO_SIDE, integer=True)

    # ---------------------------------------------------------------------------------------------- Loop
    @user_errors("make a loop")
    def make_loop(
        photo: Any,
        size: float,
        fps: float,
        duration: float,
        speed: float,
        amplitude: float,
        steps: float,
        guidance: float,
        seed: float,
        renderer: str,
        brush: Any = None,
        request: gr.Request | None = None,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio reads the default)
    ) -> tuple[str, str, np.ndarray, str, str]:
        if renderer not in {value for _, value in RENDERERS}:
            raise GIDInputError(f"renderer must be one of {[value for _, value in RENDERERS]}, got {renderer!r}")
        image = load_photo(file_path(photo))
        side = video_side(size)
        controls = loop_controls(speed=speed, amplitude=amplitude, fps=fps, length_seconds=duration)
        mask = brush_mask(loop_brush, brush, engine, image)
        settings = PredictionSettings(seed=seed, steps=steps, guidance=guidance, mask=mask)
        working = fit_long_side(image, side)
        volume = predict(image, settings)
        app_timing(volume, controls)  # the app's limits, before a frame is rendered
        session = request.session_hash if request is not None else None
        video, gif = outputs.new_path("loop", ".mp4", session), outputs.new_path("loop", ".gif", session)
        described = render_loop_on_device(checkpoint, str(video), str(gif), working, volume, controls,
                                          renderer == "learned")  # fmt: skip
        heatmap = motion_heatmap(working, volume, controls.amplitude)
        # As predicted, on the model's grid: `gid render --amplitude --speed` replays it with any controls.
        spectrum = storable(volume).save(outputs.new_path("spectral-volume", ".safetensors", session), half=True)
        return str(video), str(gif), heatmap, str(spectrum), described

    @user_errors("show the photo under the motion brush")
    def show_brush_photo(photo: Any, request: gr.Request) -> Any:
        """A new Loop photo: the brush's background, nothing painted (a painting belongs to its photo). Repeated
        `change` events for one photo change nothing, so a late one cannot wipe a painting."""
        path, session = file_path(photo), request.session_hash or ""
        if path and not brush_photos.claim(session, path):
            return gr.skip()
        try:
            return preview_image(load_photo(path), BRUSH_SIDE)  # the background, no layers
        except GIDInputError:  # no photo, or a bad one: nothing to paint on (Animate says what is wrong)
            brush_photos.forget(session)
            return None

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
            image = load_photo(path)
        except Exception:
            shown_photos.forget(session)
            raise
        preview = preview_image(image)
        state = {"preview": preview, "photo_size": (image.shape[1], image.shape[0])}
        return preview, state, None, None

    def marked(state: dict, x: float, y: float, direction: float, force: float) -> np.ndarray:
        """The preview with the poke's ring and arrow at photo pixel (x, y)."""
        preview = state["preview"]
        px, py = to_image_pixels(x, y, state["photo_size"], (preview.shape[1], preview.shape[0]))
        return draw_poke_marker(preview, px, py, force_vector(direction or 0.0, force or 0.0))

    def choose_point(state: dict | None, direction: float, force: float, evt: gr.SelectData) -> tuple[Any, Any, Any]:
        """A click on the preview: store the point (in photo pixels) and draw it. Nothing heavy happens here."""
        if not state:
            return gr.skip(), gr.skip(), gr.skip()
        preview = state["preview"]
        x, y = to_image_pixels(*evt.index, (preview.shape[1], preview.shape[0]), state["photo_size"])
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
        return predict(image, PredictionSettings(seed=seed, steps=steps, guidance=guidance))

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
        session: gr.Request,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio reads the default)
    ) -> str:
        image = load_photo(file_path(photo))
        if x is None or y is None:
            raise GIDInputError("no point chosen: click the photo where you want to poke it")
        width, height = image.shape[1], image.shape[0]
        x, y = check_number("x", x, -math.inf, math.inf), check_number("y", y, -math.inf, math.inf)
        if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
            raise GIDInputError(f"the point ({x:g}, {y:g}) is outside the {width}x{height} photo")
        working = fit_long_side(image, video_side(size))
        wx, wy = to_image_pixels(x, y, (width, height), (working.shape[1], working.shape[0]))
        request = PokeRequest(wx, wy, direction, force, damping, hold, frames)
        volume = motion_for(image, motion_file, seed, steps, guidance)
        video = outputs.new_path("poke", ".mp4", session.session_hash)
        return str(render_poke_video(video, engine.player(), working, volume, request))

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
            image = load_photo(path)
            volume = motion_for(image, motion_file, seed, steps, guidance)
        except GIDInputError as error:
            live_sent.forget(session)
            return live.message_payload(sentence(str(error)))
        return live.photo_payload(fit_long_side(image, live.LIVE_SIDE), volume)

    @user_errors("record the live poke")
    def record_live(
        photo: Any,
        motion_file: Any,
        size: float,
        seed: float,
        steps: float,
        guidance: float,
        request: gr.Request,
        evt: gr.EventData,
    ) -> str:
        """Record: the live interaction rendered on the server, as the Poke button renders (full basis, softmax
        splatting), at the poke video size."""
        image = load_photo(file_path(photo))
        working = fit_long_side(image, video_side(size))
        interaction = live.parse_interaction(evt._data, working.shape[:2])
        basis = ModalBasis.from_volume(motion_for(image, motion_file, seed, steps, guidance), *working.shape[:2])
        video = outputs.new_path("poke", ".mp4", request.session_hash)
        return str(live.render_interaction_video(video, working, basis, interaction))

    # ---------------------------------------------------------------------------------------------- From video
    @user_errors("make a loop from the clip")
    def from_video(
        clip: str | None,
        start: float,
        duration: float,
        size: float,
        amplitude: float,
        session: gr.Request,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (Gradio reads the default)
    ) -> tuple[str, str, dict]:
        request = ClipRequest(start=start, duration=duration, long_side=size, amplitude=amplitude)
        motion, note = measure_clip(clip, request)
        if note:
            gr.Warning(sentence(note))
        folder = session.session_hash
        video = outputs.new_path("clip-loop", ".mp4", folder)
        controls = loop_controls(amplitude=request.amplitude)  # the clip's window, at its own rate
        render_loop_on_device(checkpoint, str(video), None, motion.image, motion.volume, controls, False)
        spectrum = storable(motion.volume).save(outputs.new_path("clip-spectral-volume", ".safetensors", folder),
                                                half=True)  # fmt: skip
        still = save_png(outputs.new_path("clip-still", ".png", folder), motion.image)
        return str(video), str(spectrum), {"still": str(still), "spectrum": str(spectrum)}

    def end_session(request: gr.Request) -> None:
        """The browser tab closed: its output files go now, and so does what the app remembers of it."""
        outputs.end_session(request.session_hash)
        for record in (shown_photos, live_sent, brush_photos):
            record.forget(request.session_hash or "")

    def send_to_poke(state: dict | None) -> tuple[Any, Any, Any]:
        if not state:
            raise gr.Error("Make a loop from a clip first; then its motion can be poked.", print_exception=False)
        return state["still"], state["spectrum"], gr.Tabs(selected="poke")

    # ---------------------------------------------------------------------------------------------- layout
    def sampling_controls(tab: str) -> tuple[gr.Slider, gr.Slider, gr.Number]:
        """Steps, guidance (starting at the checkpoint's own default) and seed: the same in the Loop and poke tabs."""
        steps = gr.Slider(1, APP_MAX_STEPS, DEFAULT_STEPS, step=1, label="Steps", elem_id=f"{tab}-steps")
        guidance = gr.Slider(
            0, APP_MAX_GUIDANCE, engine.default_guidance, step=0.25, label="Guidance scale", elem_id=f"{tab}-guidance"
        )
        seed = gr.Number(0, precision=0, minimum=0, maximum=APP_MAX_SEED, label="Seed", elem_id=f"{tab}-seed")
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
                        with gr.Accordion("Motion brush (optional)", open=False, elem_id="loop-brush-box"):
                            gr.Markdown(
                                "Paint over the photo where it should move (**white**) and, if you like, where it "
                                "should stay still (**black**); the model decides the rest. Nothing painted: it "
                                "decides everywhere. Needs a checkpoint trained with motion masks."
                            )
                            loop_brush = brush_editor(label="Motion brush", elem_id="loop-brush")
                        loop_size = gr.Slider(
                            APP_MIN_VIDEO_SIDE,
                            APP_MAX_VIDEO_SIDE,
                            DEFAULT_SIZE,
                            step=32,
                            label="Video size (longer side, px)",
                            elem_id="loop-size",
                        )
                        loop_scale = gr.Slider(
                            0, APP_MAX_AMPLITUDE, 1.0, step=0.1, label="Motion strength (amplitude factor)"
                        )
                        loop_speed = gr.Slider(
                            APP_MIN_SPEED,
                            APP_MAX_SPEED,
                            1.0,
                            step=0.05,
                            label="Speed (2 plays the motion twice as fast: the 5 s loop lasts 2.5 s)",
                            elem_id="loop-speed",
                        )
                        loop_duration = gr.Slider(
                            1,
                            APP_MAX_LOOP_SECONDS,
                            DEFAULT_DURATION,
                            step=0.5,
                            label="Video length (s; whole loops, so the file loops seamlessly)",
                            elem_id="loop-duration",
                        )
                        loop_fps = gr.Slider(
                            APP_MIN_FPS,
                            APP_MAX_FPS,
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
                                label=f"GIF (one loop, at most {GIF_SIDE} px and {GIF_FPS:g} fps)",
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
                        poke_damping = gr.Slider(0, APP_MAX_DAMPING, 0.2, step=0.05, label="Damping")
                        poke_hold = gr.Slider(
                            0,
                            APP_MAX_HOLD_SECONDS,
                            0,
                            step=0.1,
                            label="Hold (s): drag this long, then let go; 0 is a flick",
                        )
                        with gr.Row():
                            poke_frames = gr.Slider(
                                APP_MIN_FRAMES,
                                APP_MAX_FRAMES,
                                POKE_FRAMES,
                                step=1,
                                label="Frames (30 fps)",
                                elem_id="poke-frames",
                            )
                            poke_size = gr.Slider(
                                APP_MIN_VIDEO_SIDE,
                                APP_MAX_VIDEO_SIDE,
                                POKE_SIDE,
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
                        clip_start = gr.Number(0, minimum=0, maximum=APP_MAX_CLIP_START_SECONDS, label="Start (s)")
                        clip_duration = gr.Slider(1, APP_MAX_CLIP_SECONDS, 5, step=0.1, label="Loop length (s)")
                        if (EXAMPLES / EXAMPLE_CLIP).is_file():
                            gr.Examples(
                                [[str(EXAMPLES / EXAMPLE_CLIP), 0, 3.6]],
                                inputs=[clip, clip_start, clip_duration],
                                cache_examples=False,
                            )
                        clip_size = gr.Slider(
                            APP_MIN_VIDEO_SIDE,
                            APP_MAX_CLIP_SIDE,
                            320,
                            step=32,
                            label="Size (longer side, px)",
                            elem_id="clip-size",
                        )
                        clip_scale = gr.Slider(
                            0, APP_MAX_AMPLITUDE, 1.0, step=0.1, label="Motion strength (amplitude factor)"
                        )
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
                loop_brush,
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
        loop_photo.change(
            show_brush_photo,
            [loop_photo],
            [loop_brush],
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
        demo.unload(end_session)
    demo.queue(max_size=32, default_concurrency_limit=1)
    return demo
