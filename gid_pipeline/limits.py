"""Every limit on sizes and counts, in one table: the pipeline, the player, the command line and the app check
their inputs against these before any long work (the README lists them).

Library limits hold for every caller (a Python user, ``gid``); the app's are tighter, because a shared server
serves many people at once and its HTTP API can send anything.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------- library
MIN_IMAGE_SIDE = 16
"""Shortest side of an input image, pixels."""
MAX_IMAGE_PIXELS = 50_000_000
"""Largest input image, pixels (checked from the file's header, before decoding)."""
MAX_RENDER_PIXELS = 3840 * 2160
"""Largest rendered frame, pixels (frames stream in chunks, so the limit is time: 4K at 150 frames takes minutes)."""
MAX_LONG_SIDE = 3840
"""Longest side of a rendered video, pixels (gid generate / from-video --long-side)."""
MAX_NUM_FRAMES = 1000
"""Most frames of one loop period or poke video (33 s at 30 fps); whole-video outputs hold every frame in memory
(1000 float frames at 512x320 are 2 GB)."""
MAX_FPS = 240.0
"""Highest frame rate of a rendered video."""
MAX_INFERENCE_STEPS = 1000
"""Most denoising steps (the paper samples with 250-500)."""
MAX_GUIDANCE_SCALE = 50.0
"""Largest classifier-free guidance scale (past ~10 samples saturate)."""
MAX_SELF_GUIDANCE_SCALE = 10_000.0
"""Largest motion self-guidance scale u (the paper's is 200)."""
MAX_AMPLITUDE = 50.0
"""Largest playback amplitude factor."""
MIN_MOTION_CALIBRATION, MAX_MOTION_CALIBRATION = 0.01, 100.0
"""Bounds of a checkpoint's motion_calibration (gid calibrate): a larger gap is a training problem, not a scale."""
MAX_GUIDED_FILTER_RADIUS = 64
"""Largest radius of a checkpoint's photo-guided resampling, model pixels (a window wider than the 256x160 grid's
short side would fit one affine map to the whole photo)."""
MAX_GUIDED_FILTER_EPS = 1.0
"""Largest ridge of that filter, squared grey levels (0-1): past a grey level's full range no edge is kept."""
MIN_SPEED, MAX_SPEED = 1e-3, 1e3
"""Bounds of a playback speed factor."""
MAX_VIDEO_SECONDS = 600.0
"""Longest video of repeated loop periods."""
MAX_SEED = 2**63 - 1
"""Largest random seed (torch generators take 64-bit seeds)."""
MAX_CLIP_FPS = 30.0
"""gid from-video samples a clip at its own rate, but at most this one (the model's 30 fps)."""
MAX_CLIP_FRAMES = 1000
"""Most frames read from one clip by default."""
MAX_CLIP_BYTES = 4 * 1024**3
"""Most bytes of decoded frames read from one clip (1000 frames of 1080p would be 6.2 GB)."""

# ---------------------------------------------------------------------------------------------- app
# Every number a request can set is bounded here; the UI's sliders use the same bounds and the functions below
# check them again, because the HTTP API can send anything.
APP_MAX_UPLOAD_BYTES = 50 * 1024**2
"""Largest uploaded file (photo, clip, spectral volume); the server refuses bigger uploads."""
APP_MAX_PHOTO_PIXELS = 40_000_000
"""Largest photo, checked from its header before decoding (a 40 MP photo decodes to 120 MB)."""
APP_MIN_PHOTO_SIDE = 32
"""Smallest shorter side of a photo: the model samples on a grid of 8 px latent cells."""
APP_MAX_PHOTO_ASPECT = 4.0
"""Most elongated photo (longer side / shorter side) the model's 256x160 framing can take."""
APP_MIN_VIDEO_SIDE, APP_MAX_VIDEO_SIDE = 64, 1024
"""Bounds of a video's longer side in pixels (rendering time grows with the area)."""
APP_MIN_FRAMES, APP_MAX_FRAMES = 8, 300
"""Bounds of the frames in one poke video, and in one period of a loop (300 = 10 s at 30 fps)."""
APP_MIN_SPEED, APP_MAX_SPEED = 0.25, 4.0
"""Bounds of a loop's speed factor (2 plays the motion twice as fast: the period halves)."""
APP_MIN_FPS, APP_MAX_FPS = 8.0, 60.0
"""Bounds of a loop video's frame rate (frames per second)."""
APP_MAX_LOOP_SECONDS = 20.0
"""Longest loop video: its period repeated a whole number of times, so the file itself loops seamlessly."""
APP_MAX_STEPS = 100
"""Most diffusion steps a request may ask for."""
APP_MAX_GUIDANCE = 10.0
"""Largest classifier-free guidance scale."""
APP_MAX_AMPLITUDE = 5.0
"""Largest motion amplitude factor."""
APP_MAX_SEED = 2**31 - 1
"""Largest seed a request may ask for (the UI's number box holds 32-bit integers)."""
APP_MAX_FORCE = 100.0
"""Largest poke force in pixels (the dynamics soft-limit displacements anyway)."""
APP_MAX_HOLD_SECONDS = 5.0
"""Longest drag before release."""
APP_MAX_DAMPING = 0.95
"""Largest damping ratio (dynamics refuses 1 and above: an overdamped scene does not swing)."""
APP_MAX_CLIP_FPS = 30.0
"""Clips are sampled at their own rate, but at most this one."""
APP_MAX_CLIP_START_SECONDS = 120.0
"""A clip window may start at most this late (decoding starts at the file's first frame)."""
APP_MAX_CLIP_SECONDS = 20.0
"""Longest clip window (and at most APP_MAX_FRAMES frames)."""
APP_MAX_CLIP_SIDE = 512
"""Longest side at which a clip's flow is measured."""
