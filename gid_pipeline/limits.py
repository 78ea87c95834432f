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
MIN_SPEED, MAX_SPEED = 1e-3, 1e3
"""Bounds of a playback speed factor."""
MAX_VIDEO_SECONDS = 600.0
"""Longest video of repeated loop periods."""
MAX_SEED = 2**63 - 1
"""Largest random seed (torch generators take 64-bit seeds)."""
MAX_CLIP_FRAMES = 1000
"""Most frames read from one clip by default."""
MAX_CLIP_BYTES = 4 * 1024**3
"""Most bytes of decoded frames read from one clip (1000 frames of 1080p would be 6.2 GB)."""
