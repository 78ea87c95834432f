"""The live poke's server side: the compact basis (modes kept, grid, quantisation, budget), the payload the browser
reads, and a recorded interaction turned back into pokes that the server renders. The browser side is in
test_live_poke_browser.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gid_pipeline.app import live
from gid_pipeline.errors import GIDInputError
from gid_pipeline.media.images import image_to_tensor, read_image
from gid_pipeline.media.video import probe_video
from gid_pipeline.motion.dynamics import DynamicsParams, ModalBasis, Poke, modal_coordinates
from gid_pipeline.spectral.transform import complex_to_channels
from gid_pipeline.spectral.volume import SpectralVolume

PHOTO = Path(__file__).resolve().parents[1] / "assets" / "examples" / "dandelion.jpg"  # 1024x640
LIVE_HEIGHT, LIVE_WIDTH = 320, 512  # the photo at the live size
GRID_HEIGHT, GRID_WIDTH = 160, 256  # the model's grid
CENTRE, RADIUS = (256.0, 120.0), 90.0  # the moving disc, live pixels (x, y); outside it nothing moves
pytestmark = pytest.mark.usefixtures("one_thread")


def disc_volume(num_frequencies: int = 16) -> SpectralVolume:
    """A 5 s, 30 fps spectral volume on the model's grid whose disc sways (bin k: about 3 / k px, phases vary)
    and is exactly still outside it."""
    ys = torch.arange(GRID_HEIGHT, dtype=torch.float32).view(-1, 1) + 0.5
    xs = torch.arange(GRID_WIDTH, dtype=torch.float32).view(1, -1) + 0.5
    cx, cy, r = CENTRE[0] / 2, CENTRE[1] / 2, RADIUS / 2
    bump = (1.0 - ((xs - cx).square() + (ys - cy).square()) / r**2).clamp_min(0.0).square()
    spectrum = torch.zeros(num_frequencies, 2, GRID_HEIGHT, GRID_WIDTH, dtype=torch.complex64)
    for k in range(1, num_frequencies):
        phase = complex(math.cos(k), math.sin(k))
        spectrum[k, 0] = bump * (3.0 / k) * phase
        spectrum[k, 1] = bump * (1.0 / k) * 1j
    return SpectralVolume(complex_to_channels(spectrum), 150, 30.0)


def live_photo() -> np.ndarray:
    """dandelion.jpg at the live size, (320, 512, 3) uint8."""
    from PIL import Image

    return np.asarray(Image.fromarray(read_image(PHOTO)).resize((LIVE_WIDTH, LIVE_HEIGHT), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def basis() -> ModalBasis:
    return ModalBasis.from_volume(disc_volume(), LIVE_HEIGHT, LIVE_WIDTH)


@pytest.fixture(scope="module")
def packed(basis) -> live.LiveBasis:
    return live.pack_live_basis(basis)


# ------------------------------------------------------------------------------------------------ the basis


@pytest.mark.parametrize(("bits", "tolerance"), [(8, 2.0 / 127), (16, 2.0 / 32767)])
def test_quantisation_is_fine_near_zero_exact_at_zero_and_bounded(bits, tolerance):
    values = torch.randn(3, 4, 20, 30) ** 3  # heavy tails, as mode shapes have
    values[:, :, :5] = 0.0
    codes, scales = live.quantize(values, bits)
    assert codes.dtype == (torch.int8 if bits == 8 else torch.int16)
    decoded = live.dequantize(codes, scales, bits)
    assert torch.equal(decoded[:, :, :5], torch.zeros_like(decoded[:, :, :5]))  # still stays exactly still
    # Companding: the error of a value v is about 2 sqrt(|v| / s) / Q of the scale s, so small values err least.
    relative = (decoded - values).abs() / scales[:, :, None, None]
    assert float(relative.max()) <= tolerance
    small = values.abs() < 0.01 * scales[:, :, None, None]
    assert float(relative[small].max()) <= 0.2 * tolerance


def test_the_most_compliant_modes_are_kept_on_the_model_grid(basis, packed):
    assert packed.codes.shape == (live.LIVE_MODES, GRID_HEIGHT, GRID_WIDTH, 4)
    assert packed.image_size == (LIVE_HEIGHT, LIVE_WIDTH)
    # The disc's mode shapes fall as 1 / k and compliance as 1 / omega^2: the slowest 8 modes, in order.
    assert torch.allclose(packed.omegas, basis.omegas[: live.LIVE_MODES])
    assert packed.compliance_kept > 0.999
    assert packed.reference_compliance == basis.reference_compliance
    # Decoded and upsampled, the kept modes are the full basis's, to the quantisation and the coarser grid.
    restored = packed.to_modal_basis()
    assert restored.size == basis.size
    error = (restored.shapes - basis.shapes[: live.LIVE_MODES]).abs().amax(dim=(1, 2, 3))
    assert torch.all(error <= 0.05 * basis.shapes[: live.LIVE_MODES].abs().amax(dim=(1, 2, 3)))


def test_a_512_px_photos_payload_is_under_4_mb_and_reads_back_exactly(packed):
    text = live.live_payload(live_photo(), packed)
    assert len(text) < 4_000_000
    payload = json.loads(text)
    assert payload["format"] == live.PAYLOAD_FORMAT and payload["version"] == live.PAYLOAD_VERSION
    assert (payload["image"]["width"], payload["image"]["height"]) == (LIVE_WIDTH, LIVE_HEIGHT)
    assert payload["image"]["url"].startswith("data:image/jpeg;base64,")
    assert payload["params"] == {"damping": 0.2, "stiffness": 1.0, "mass": 1.0, "max_displacement": 0.1}
    back = live.read_payload(text)
    assert np.array_equal(back.codes, packed.codes)
    assert torch.equal(back.scales, packed.scales) and torch.equal(back.omegas, packed.omegas)
    assert back.reference_compliance == packed.reference_compliance


def test_sixteen_bits_give_a_finer_basis_in_twice_the_bytes(basis, packed):
    fine = live.pack_live_basis(basis, bits=16)
    assert fine.codes.dtype == np.int16 and fine.codes.nbytes == 2 * packed.codes.nbytes
    exact = basis.shapes[: live.LIVE_MODES]
    coarse_error = (packed.to_modal_basis().shapes - exact).abs().mean()
    assert (fine.to_modal_basis().shapes - exact).abs().mean() < coarse_error


def test_a_basis_over_the_budget_is_refused_with_a_message(basis):
    big = live.pack_live_basis(basis, grid_side=512, modes=15, bits=16)  # ~21 MB as base64
    with pytest.raises(GIDInputError, match=r"live motion basis would be 2\d\.\d MB, over the 4\.0 MB budget"):
        live.live_payload(live_photo(), big)
    payload = json.loads(live.photo_payload(live_photo(), disc_volume()))  # the app's path: within the budget
    assert "message" not in payload


def test_a_photo_without_motion_gets_a_message_instead_of_a_basis():
    still = SpectralVolume(torch.zeros(16, 4, GRID_HEIGHT, GRID_WIDTH), 150, 30.0)
    payload = json.loads(live.photo_payload(live_photo(), still))
    assert payload == {"format": live.PAYLOAD_FORMAT, "message": payload["message"]}
    assert payload["message"].startswith("This photo has no predicted motion")


def test_bad_settings_and_payloads_are_refused(basis, packed):
    with pytest.raises(GIDInputError, match="8 or 16 bits"):
        live.pack_live_basis(basis, bits=4)
    with pytest.raises(GIDInputError, match="modes must be a positive integer"):
        live.pack_live_basis(basis, modes=0)
    with pytest.raises(GIDInputError, match="the photo is 256x160 but the live basis is for 512x320"):
        live.live_payload(live_photo()[::2, ::2], packed)
    with pytest.raises(GIDInputError, match="not a gid-live-basis version 1 payload"):
        live.read_payload(live.message_payload("hello"))
    with pytest.raises(GIDInputError, match="not a readable live basis payload"):
        live.read_payload("{")


def test_the_browser_script_ships_with_the_package():
    script = live.browser_script()
    assert "function mountLivePoke(" in script and "function mountLivePokeInGradio(" in script
    assert f"LIVE_BUDGET_BYTES = {live.MAX_PAYLOAD_BYTES:_}" in script


# ------------------------------------------------------------------------------------------------ recording


def recording(**changes) -> dict:
    """A browser recording on the live canvas: a drag held 0.5 s, then changed, then released at 0.8 s."""
    data = {
        "width": LIVE_WIDTH,
        "height": LIVE_HEIGHT,
        "pokes": [
            {"x": 255.5, "y": 119.5, "dx": 10.0, "dy": -4.0, "start": 0.0, "hold": 0.5},
            {"x": 255.5, "y": 119.5, "dx": 14.0, "dy": 0.0, "start": 0.5, "hold": 0.3},
        ],
        "params": {"damping": 0.3, "stiffness": 2.0},
    }
    data.update(changes)
    return data


def test_a_recording_maps_onto_the_video_grid_and_runs_until_the_scene_settles():
    interaction = live.parse_interaction(recording(), (160, 256))  # a video at half the live size
    first, second = interaction.pokes
    assert (first.x, first.y, first.dx, first.dy, first.hold) == (127.5, 59.5, 5.0, -2.0, 0.5)
    assert (second.start, second.dx) == (0.5, 7.0)
    assert interaction.params == DynamicsParams(damping=0.3, stiffness=2.0)
    assert interaction.num_frames == math.ceil((0.8 + live.SETTLE_SECONDS) * live.FPS)


def test_a_drag_recorded_in_stretches_moves_the_scene_as_one_held_drag(basis):
    """The browser logs a drag as one Poke per stretch of constant force: contiguous stretches of the same
    force superpose into the single held poke, so what it simulated is what the server renders."""
    stretches = [Poke(250, 118, 9.0, 3.0, start=s, hold=0.2) for s in (0.0, 0.2, 0.4)]
    times = torch.arange(0, 3, 1 / 30, dtype=torch.float64)
    params = DynamicsParams(damping=0.3, stiffness=2.0)
    pieces = modal_coordinates(basis, stretches, times, params)
    whole = modal_coordinates(basis, [Poke(250, 118, 9.0, 3.0, hold=0.6)], times, params)
    assert torch.allclose(pieces, whole, atol=1e-9 * float(whole.abs().max()))


def test_a_recorded_interaction_renders_as_the_servers_poke_video(basis, tmp_path):
    interaction = live.parse_interaction(recording(), (LIVE_HEIGHT, LIVE_WIDTH))
    frames = torch.cat(list(live.interaction_frames(live_photo(), basis, interaction)))
    assert frames.shape == (interaction.num_frames, 3, LIVE_HEIGHT, LIVE_WIDTH)
    photo = image_to_tensor(live_photo())
    assert torch.equal(frames[0], photo)  # nothing has moved at the press
    assert float((frames[15] - photo).abs().amax()) > 0.1  # the disc is pulled
    assert torch.allclose(frames[15, :, :20, :20], photo[:, :20, :20], atol=1e-5)  # the still corner is not
    path = live.render_interaction_video(tmp_path / "poke.mp4", live_photo(), basis, interaction)
    info = probe_video(path)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", LIVE_WIDTH, LIVE_HEIGHT)
    assert info.num_frames == interaction.num_frames


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pokes": []}, "nothing was recorded"),
        ({"width": 300}, "not this photo's shape"),
        ({"width": float("nan")}, "width must be a finite number"),
        ({"params": {"damping": 1.0, "stiffness": 1.0}}, "damping must be between 0 and 0.95"),
        ({"params": {"damping": 0.2}}, "stiffness must be a finite number"),
        ({"pokes": [{"x": 600, "y": 10, "dx": 1, "dy": 0, "start": 0, "hold": 1}]}, "off the 512x320 canvas"),
        ({"pokes": [{"x": 6, "y": 10, "dx": 1, "dy": 0, "start": -1, "hold": 1}]}, "start and hold must be >= 0"),
        ({"pokes": [{"x": 6, "y": 10, "dx": True, "dy": 0, "start": 0, "hold": 1}]}, "dx must be a finite number"),
        ({"pokes": ["poke"]}, "not a record of x, y"),
        ({"pokes": [{"x": 6, "y": 10, "dx": 1, "dy": 0, "start": 0, "hold": 0}] * 1201}, "more than the 1200"),
    ],
)
def test_bad_recordings_are_refused_with_a_message(changes, message):
    with pytest.raises(GIDInputError, match=message):
        live.parse_interaction(recording(**changes), (LIVE_HEIGHT, LIVE_WIDTH))
    with pytest.raises(GIDInputError, match="the recording is missing"):
        live.parse_interaction(None, (LIVE_HEIGHT, LIVE_WIDTH))
