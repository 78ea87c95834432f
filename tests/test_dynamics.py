import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gid_pipeline.errors import GIDInputError
from gid_pipeline.media.video import read_video
from gid_pipeline.motion.dynamics import (
    STILL_PIXELS,
    DynamicsParams,
    ModalBasis,
    Poke,
    iter_poke_frames,
    modal_coordinates,
    modal_displacements,
    poke_video_frames,
    render_poke,
    soft_limit,
)
from gid_pipeline.motion.flow import estimate_flow
from gid_pipeline.spectral.transform import complex_to_channels, motion_to_spectrum, resize_spectrum
from gid_pipeline.spectral.volume import SpectralVolume

HEIGHT, WIDTH = 32, 40
BLOCK = (slice(8, 24), slice(10, 30))  # rows, columns of the part of the synthetic scene that moves
NUM_FRAMES, FPS = 40, 20.0  # bin spacing 0.5 Hz


def block_volume(
    mode_shapes: dict[int, tuple[complex, complex]] | None = None, num_frequencies: int = 5
) -> SpectralVolume:
    """A still scene whose BLOCK moves: bin k -> (x, y) complex amplitude in pixels, the same over the block."""
    mode_shapes = mode_shapes or {1: (1.0, 0.3j), 2: (0.5j, 0.4), 3: (0.25, -0.2)}
    spectrum = torch.zeros(num_frequencies, 2, HEIGHT, WIDTH, dtype=torch.complex64)
    for k, (x, y) in mode_shapes.items():
        spectrum[k, 0][BLOCK] = x
        spectrum[k, 1][BLOCK] = y
    # A smooth falloff towards the block's edges, so that rendering has something to stretch.
    ys = torch.linspace(-1, 1, 16).view(-1, 1)
    xs = torch.linspace(-1, 1, 20).view(1, -1)
    spectrum[..., BLOCK[0], BLOCK[1]] *= (1.2 - 0.5 * (xs.square() + ys.square())).to(torch.complex64)
    return SpectralVolume(complex_to_channels(spectrum), NUM_FRAMES, FPS)


def still_image(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(3, HEIGHT // 4, WIDTH // 4, generator=generator)
    return torch.nn.functional.interpolate(image[None], size=(HEIGHT, WIDTH), mode="bilinear")[0]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def basis() -> ModalBasis:
    return ModalBasis.from_volume(block_volume(), HEIGHT, WIDTH)


def displacement(basis, pokes, times, params=None) -> torch.Tensor:
    params = params or DynamicsParams()
    return modal_displacements(basis, modal_coordinates(basis, pokes, times, params), params)


TIMES = torch.arange(0, 4, 1 / 20, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------- physics


def test_no_force_no_motion(basis):
    for pokes in ([], [Poke(20, 16, 0.0, 0.0)], [Poke(20, 16, 0.0, 0.0, hold=1.0)]):
        assert torch.count_nonzero(modal_coordinates(basis, pokes, TIMES)) == 0
        assert torch.count_nonzero(displacement(basis, pokes, TIMES)) == 0
    image = still_image()
    frames = render_poke(image, basis, [Poke(20, 16, 0.0, 0.0)], 12, 30.0)
    assert torch.equal(frames, image.expand(12, -1, -1, -1))


@pytest.mark.parametrize("hold", [0.0, 0.7])
def test_displacement_is_linear_in_the_force(basis, hold):
    small = displacement(basis, [Poke(18.5, 14.2, 0.4, -0.3, hold=hold)], TIMES)
    double = displacement(basis, [Poke(18.5, 14.2, 0.8, -0.6, hold=hold)], TIMES)
    opposite = displacement(basis, [Poke(18.5, 14.2, -0.4, 0.3, hold=hold)], TIMES)
    assert small.abs().amax() > 0.05  # it really moves...
    assert double.abs().amax() < 0.5 * DynamicsParams().limit_pixels((HEIGHT, WIDTH))  # ...below the knee
    torch.testing.assert_close(double, 2 * small, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(opposite, -small, rtol=1e-5, atol=1e-6)


def test_superposition_of_pokes(basis):
    first = Poke(15, 12, 1.0, 0.5, start=0.3)
    second = Poke(25, 20, -0.5, 1.0, start=1.1, hold=0.6)
    both = modal_coordinates(basis, [first, second], TIMES)
    torch.testing.assert_close(
        both, modal_coordinates(basis, [first], TIMES) + modal_coordinates(basis, [second], TIMES)
    )
    torch.testing.assert_close(
        displacement(basis, [first, second], TIMES),
        displacement(basis, [first], TIMES) + displacement(basis, [second], TIMES),
        rtol=1e-5,
        atol=1e-6,
    )
    # Nothing happens before a poke starts.
    assert torch.count_nonzero(modal_coordinates(basis, [second], TIMES[TIMES <= 1.1])) == 0


def modal_energy(basis, pokes, params, times, dt=1e-4) -> torch.Tensor:
    """Per-time total modal energy 0.5 (|q'|^2 + w^2 |q|^2), q' by central differences."""
    q = modal_coordinates(basis, pokes, times, params)
    velocity = (
        modal_coordinates(basis, pokes, times + dt, params) - modal_coordinates(basis, pokes, times - dt, params)
    ) / (2 * dt)
    omega = basis.omegas * math.sqrt(params.stiffness / params.mass)
    return 0.5 * (velocity.abs().square() + omega.square() * q.abs().square()).sum(dim=1)


@pytest.mark.parametrize("hold", [0.0, 0.5])
def test_energy_decays_with_damping_and_is_conserved_without(basis, hold):
    after = torch.arange(0.6, 20, 0.05, dtype=torch.float64)  # after any release
    poke = Poke(20, 16, 1.0, 0.5, hold=hold)
    damped = modal_energy(basis, [poke], DynamicsParams(damping=0.1), after)
    assert torch.all(damped[1:] <= damped[:-1] * (1 + 1e-6))
    assert damped[-1] < 1e-3 * damped[0]
    free = modal_energy(basis, [poke], DynamicsParams(damping=0.0), after)
    torch.testing.assert_close(free, torch.full_like(free, float(free[0])), rtol=1e-5, atol=0)


@pytest.mark.parametrize("force", [50.0, 1e9, 1e300])
def test_response_stays_bounded_for_huge_forces(basis, force):
    params = DynamicsParams()
    limit = params.limit_pixels((HEIGHT, WIDTH))
    for hold in (0.0, 1.0):
        motion = displacement(basis, [Poke(20, 16, force, -force, hold=hold)], TIMES, params)
        magnitude = torch.hypot(motion[:, 0], motion[:, 1])
        assert torch.isfinite(motion).all()
        assert magnitude.amax() <= limit
        assert magnitude.amax() > 0.25 * limit  # limited, not switched off
    # Many saturated pokes add up beyond the limit; every pixel's displacement is limited too.
    crowd = [Poke(20, 16, force, 0.0, start=0.1 * i, hold=0.1 * (i % 2)) for i in range(6)]
    magnitude = torch.hypot(*displacement(basis, crowd, TIMES, params).unbind(1))
    assert limit * 0.9 < magnitude.amax() <= limit
    frames = render_poke(still_image(), basis, [Poke(20, 16, force, force)], 10, 20.0)
    assert torch.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1


@given(st.floats(0.0, 1e6, allow_nan=False), st.floats(0.0, 1e6, allow_nan=False))
@settings(max_examples=60, deadline=None)
def test_soft_limit_is_identity_then_smooth_and_bounded(a, b):
    limit = 8.0
    values = soft_limit(torch.tensor([a, b], dtype=torch.float64), limit)
    assert torch.all(values <= limit)
    for raw, limited in zip((a, b), values.tolist(), strict=True):
        if raw <= limit / 2:
            assert limited == raw
    # Monotone with slope at most 1.
    low, high = sorted((a, b))
    (f_low, f_high) = soft_limit(torch.tensor([low, high], dtype=torch.float64), limit).tolist()
    assert 0 <= f_high - f_low <= high - low + 1e-12


def test_a_still_region_neither_moves_nor_can_be_poked(basis):
    outside = torch.ones(HEIGHT, WIDTH, dtype=torch.bool)
    outside[BLOCK] = False
    motion = displacement(basis, [Poke(20, 16, 2.0, 1.0), Poke(12, 10, -1.0, 1.0, hold=0.5)], TIMES)
    assert motion[..., BLOCK[0], BLOCK[1]].abs().amax() > 0.1
    assert torch.count_nonzero(motion[:, :, outside]) == 0
    # Poking the still part (x = 3 and the far corner) drives no mode at all.
    for poke in (Poke(3, 16, 5.0, 5.0), Poke(WIDTH - 1, HEIGHT - 1, -5.0, 0.0, hold=1.0)):
        assert torch.count_nonzero(modal_coordinates(basis, [poke], TIMES)) == 0


def dominant_frequency(signal: torch.Tensor, rate: float) -> float:
    spectrum = torch.fft.rfft(signal - signal.mean()).abs()
    return float(torch.argmax(spectrum)) * rate / signal.shape[0]


@pytest.mark.parametrize("stiffness", [1.0, 4.0])
def test_response_oscillates_at_the_mode_frequency(stiffness):
    k = 3  # 1.5 Hz
    volume = block_volume({k: (0.8, 0.6j)}, num_frequencies=6)
    basis = ModalBasis.from_volume(volume, HEIGHT, WIDTH)
    params = DynamicsParams(damping=0.005, stiffness=stiffness)
    rate, duration = 50.0, 80.0
    times = torch.arange(0, duration, 1 / rate, dtype=torch.float64)
    q = modal_coordinates(basis, [Poke(20, 16, 1.0, 0.0)], times, params)
    expected = float(volume.frequencies_hz[k]) * math.sqrt(stiffness) * math.sqrt(1 - params.damping**2)
    resolution = 1 / duration
    assert abs(dominant_frequency(q[:, k - 1].real, rate) - expected) <= resolution
    # The rendered displacement of a moving pixel swings at the same frequency.
    motion = displacement(basis, [Poke(20, 16, 1.0, 0.0)], times, params)
    assert abs(dominant_frequency(motion[:, 0, 16, 20].double(), rate) - expected) <= resolution
    assert abs(expected - float(volume.frequencies_hz[k]) * math.sqrt(stiffness)) < resolution


def test_force_units_are_pixels_of_the_picture():
    volume = block_volume({2: (0.7 * complex(math.cos(2.0), math.sin(2.0)), 0.0)})  # one mode, along x only
    basis = ModalBasis.from_volume(volume, HEIGHT, WIDTH)
    poke_at = (20.0, 16.0)
    # A settled drag pulls the poked point by the force, whatever the mode's phase.
    params = DynamicsParams(damping=0.6)
    held = displacement(basis, [Poke(*poke_at, 1.5, 0.0, hold=60.0)], torch.tensor([59.0]), params)
    torch.testing.assert_close(held[0, :, 16, 20], torch.tensor([1.5, 0.0]), atol=1e-4, rtol=1e-4)
    # An impulse makes it swing by about the force (a lightly damped mode loses little in its first swing).
    params = DynamicsParams(damping=0.01)
    swing = displacement(basis, [Poke(*poke_at, 1.5, 0.0)], torch.arange(0, 2, 0.001), params)
    assert 1.4 < float(swing[:, 0, 16, 20].amax()) <= 1.5


def test_resized_spectrum_gives_the_same_basis_as_resizing_first():
    volume = block_volume()
    coarse = SpectralVolume(resize_spectrum(volume.spectrum, (16, 20)), NUM_FRAMES, FPS)
    from_coarse = ModalBasis.from_volume(coarse, HEIGHT, WIDTH)
    manual = ModalBasis.from_volume(
        SpectralVolume(resize_spectrum(coarse.spectrum, (HEIGHT, WIDTH)), NUM_FRAMES, FPS), HEIGHT, WIDTH
    )
    torch.testing.assert_close(from_coarse.shapes, manual.shapes)
    # Displacements were scaled to the finer grid: the block's amplitude roughly doubles.
    assert 1.5 < float(from_coarse.shapes.abs().amax() / coarse.spectrum.abs().amax()) < 2.5
    with pytest.raises(GIDInputError, match="aspect ratio"):
        ModalBasis.from_volume(volume, HEIGHT, 2 * WIDTH)


# ------------------------------------------------------------------------------------------------- rendering


def test_rendered_frames_have_the_right_shape_range_and_start_at_the_image(basis):
    image = still_image()
    frames = render_poke(image, basis, [Poke(20, 16, 3.0, -1.0)], 24, 30.0)
    assert frames.shape == (24, 3, HEIGHT, WIDTH) and frames.dtype == torch.float32
    assert frames.min() >= 0 and frames.max() <= 1
    assert torch.equal(frames[0], image)
    assert (frames[1:] - image).abs().amax() > 0.01  # the poke shows from the next frame on


def test_streaming_gives_the_batch_frames_first_frame_alone(basis):
    image = still_image(1)
    pokes = [Poke(20, 16, 2.0, 1.0), Poke(14, 12, -1.0, 0.5, start=0.4, hold=0.3)]
    batch = render_poke(image, basis, pokes, 30, 24.0)
    chunks = list(iter_poke_frames(image, basis, pokes, 30, 24.0))
    assert [c.shape[0] for c in chunks] == [1, 1, 2, 4, 8, 8, 6]
    torch.testing.assert_close(torch.cat(chunks), batch, atol=1e-5, rtol=0)
    one_by_one = torch.cat(list(iter_poke_frames(image, basis, pokes, 30, 24.0, chunk_size=1)))
    torch.testing.assert_close(one_by_one, batch, atol=1e-5, rtol=0)
    # An app streaming on from a later moment of the same clock gets the same frames.
    later = render_poke(image, basis, pokes, 12, 24.0, start_time=18 / 24.0)
    torch.testing.assert_close(later, batch[18:], atol=1e-5, rtol=0)


def test_settled_scene_renders_the_image_itself(basis):
    image = still_image(2)
    params = DynamicsParams(damping=0.9)
    frames = render_poke(image, basis, [Poke(20, 16, 1.0, 0.0)], 120, 10.0, params)
    settled = displacement(basis, [Poke(20, 16, 1.0, 0.0)], torch.tensor([11.9]), params).abs().amax()
    assert settled < STILL_PIXELS
    assert torch.equal(frames[-1], image)


def test_poke_video_frames_streams_the_cli_render():
    image = still_image(3)
    volume = block_volume()
    frames = torch.cat(list(poke_video_frames(image, volume, (20, 16), (2.0, 0.0), 15, 30.0, drag_seconds=0.2)))
    basis = ModalBasis.from_volume(volume, HEIGHT, WIDTH)
    expected = render_poke(image, basis, [Poke(20, 16, 2.0, 0.0, hold=0.2)], 15, 30.0)
    torch.testing.assert_close(frames, expected)


# ------------------------------------------------------------------------------------------------- the tree clip


@pytest.fixture(scope="module")
def tree(tree_clip_path):
    """Frames 0-53 of the tree clip: first frame, spectral volume, and mean-over-time flow magnitude."""
    clip = read_video(tree_clip_path, num_frames=54)
    flow = estimate_flow(clip.frames).flow  # frame 0 -> t
    volume = SpectralVolume(motion_to_spectrum(torch.from_numpy(flow)), len(flow), clip.fps)
    return clip.frames[0], volume, np.linalg.norm(flow, axis=1).mean(axis=0)


def test_poking_the_tree_moves_the_tree_and_not_the_window_frame(tree):
    frame, volume, mean_flow = tree
    window = (slice(40, 200), slice(14, 28))  # the dark vertical bar of the window frame, on the left
    foliage = (slice(30, 90), slice(140, 200))
    # The clip itself says which is which: the window frame barely moves, the foliage sways.
    assert np.median(mean_flow[window]) < 0.5 < 1.0 < np.median(mean_flow[foliage])
    image = torch.from_numpy(frame).permute(2, 0, 1).float() / 255
    basis = ModalBasis.from_volume(volume, *image.shape[-2:])
    pokes = [Poke(165, 60, 6.0, 1.5)]
    times = torch.arange(0, 1.6, 1 / 15, dtype=torch.float64)  # the first swing peaks at about 0.8 s
    peak = torch.hypot(*displacement(basis, pokes, times).unbind(1)).amax(dim=0)
    assert peak[foliage].median() > 1.0
    assert peak[window].median() < 0.2 * peak[foliage].median()
    frames = render_poke(image, basis, pokes, len(times), 15.0)
    change = (frames - image).abs().mean(dim=1).amax(dim=0)
    assert change[foliage].mean() > 0.05
    assert change[window].mean() < 0.05 * change[foliage].mean()


# ------------------------------------------------------------------------------------------------- bad input


def test_bad_pokes_are_refused(basis):
    for values in ((float("nan"), 16, 1, 1), (20, 16, float("inf"), 0), (20, 16, 1, float("nan"))):
        with pytest.raises(GIDInputError, match="finite"):
            Poke(*values)
    with pytest.raises(GIDInputError, match=">= 0"):
        Poke(20, 16, 1, 1, start=-1.0)
    with pytest.raises(GIDInputError, match=">= 0"):
        Poke(20, 16, 1, 1, hold=-0.5)
    for x, y in ((-1, 16), (WIDTH, 16), (20, HEIGHT + 3), (20, -0.6)):
        with pytest.raises(GIDInputError, match="outside"):
            modal_coordinates(basis, [Poke(x, y, 1, 1)], TIMES)
        with pytest.raises(GIDInputError, match="outside"):
            iter_poke_frames(still_image(), basis, [Poke(x, y, 1, 1)], 5, 30.0)
    # The picture's outer half-pixel rim is still on the picture.
    modal_coordinates(basis, [Poke(-0.5, HEIGHT - 0.5, 1, 1)], TIMES)


@pytest.mark.parametrize(
    "kwargs", [{"damping": -0.1}, {"damping": 1.0}, {"damping": float("nan")}, {"damping": "0.1"},
               {"stiffness": 0.0}, {"mass": -1.0}, {"max_displacement": 0.0}, {"max_displacement": 2.0}]
)  # fmt: skip
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(GIDInputError):
        DynamicsParams(**kwargs)


@pytest.mark.parametrize(
    "num_frames, fps", [(0, 30.0), (-3, 30.0), (2.5, 30.0), (10, 0.0), (10, -24.0), (10, math.nan)]
)
def test_bad_frame_counts_and_rates_are_refused(basis, num_frames, fps):
    with pytest.raises(GIDInputError):
        iter_poke_frames(still_image(), basis, [Poke(20, 16, 1, 1)], num_frames, fps)
    with pytest.raises(GIDInputError):
        poke_video_frames(still_image(), block_volume(), (20, 16), (1, 1), num_frames, fps)


def test_spectra_without_time_base_or_modes_are_refused():
    volume = block_volume()
    with pytest.raises(GIDInputError, match="num_frames and fps"):
        ModalBasis.from_volume(volume.spectrum, HEIGHT, WIDTH)
    with pytest.raises(GIDInputError, match="DC"):
        ModalBasis.from_volume(SpectralVolume(volume.spectrum[:1], NUM_FRAMES, FPS), HEIGHT, WIDTH)
    with pytest.raises(GIDInputError, match="aspect ratio"):
        poke_video_frames(still_image()[:, :, :20], volume, (5, 5), (1, 1), 5, 30.0)


def test_bad_sizes_and_clocks_are_refused(basis):
    with pytest.raises(GIDInputError, match="positive integers"):
        ModalBasis.from_volume(block_volume(), 0, WIDTH)
    with pytest.raises(GIDInputError, match="start_time"):
        iter_poke_frames(still_image(), basis, [], 5, 30.0, start_time=math.inf)
    with pytest.raises(GIDInputError, match="chunk_size"):
        iter_poke_frames(still_image(), basis, [], 5, 30.0, chunk_size=0)


def test_image_must_match_the_basis(basis):
    with pytest.raises(GIDInputError, match="does not match"):
        iter_poke_frames(torch.rand(3, HEIGHT, WIDTH + 8), basis, [], 5, 30.0)
    with pytest.raises(GIDInputError, match="Poke"):
        iter_poke_frames(still_image(), basis, [(20, 16, 1, 1)], 5, 30.0)
