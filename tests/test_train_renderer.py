import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gid_pipeline.cli import main
from gid_pipeline.data.triples import (
    CLIP_FRAMES,
    HELD_OUT_SEED,
    ProceduralClips,
    TripleStream,
    VideoClips,
    make_loader,
    open_clip_sources,
    triple_batch,
)
from gid_pipeline.errors import GIDInputError
from gid_pipeline.media.writer import write_video
from gid_pipeline.models.render_losses import render_loss
from gid_pipeline.models.renderer import SplatRenderer
from gid_pipeline.rendering.loop import render_frames
from gid_pipeline.training import read_losses
from gid_pipeline.training.train_renderer import RendererTrainConfig, open_triples, train_renderer

SIZE = (48, 32)
TINY = {"scale_channels": (4, 8, 8)}
FAST = {"batch_size": 2, "num_workers": 0, "warmup_steps": 0, "learning_rate": 3e-3, "ema_decay": 0.0}


pytestmark = pytest.mark.usefixtures("one_thread")


def config(output, **overrides) -> RendererTrainConfig:
    values = {"model": "renderer", "data": ["procedural"], "output": str(output), "size": list(SIZE),
              "model_config": TINY, **FAST}  # fmt: skip
    return RendererTrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def stream() -> TripleStream:
    return TripleStream(open_clip_sources(["procedural"], SIZE), batch_size=2, reuse=3, lanes=2)


def assert_batches_equal(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_triples_have_the_documented_shapes_and_ranges(stream):
    batch = stream.batch(0)
    width, height = SIZE
    assert batch["image"].shape == batch["target"].shape == (2, 3, height, width)
    assert batch["flow"].shape == (2, 2, height, width) and batch["metric"].shape == (2, 1, height, width)
    assert all(value.dtype == torch.float32 for key, value in batch.items() if key != "time")
    assert batch["image"].min() >= 0 and batch["image"].max() <= 1
    assert ((batch["time"] >= 1) & (batch["time"] < CLIP_FRAMES)).all()
    assert (batch["metric"] >= 0).all()


def test_exact_flow_warps_frame_zero_onto_frame_t():
    # The ground truth fits: where F_t moves a pixel by over 3/4 pixel, frame 0 splatted by F_t lands much closer
    # to frame t than frame 0 itself is (128x80: at smaller sizes the motion is sub-pixel).
    stream = TripleStream([ProceduralClips((128, 80))], batch_size=1, reuse=1, flip=False)
    for index in range(2):
        batch = stream.batch(index)
        moving = torch.hypot(*batch["flow"][0]) > 0.75
        assert moving.sum() > 50
        warped = render_frames(batch["image"][0], batch["flow"], 2.0 * batch["metric"])
        error_warped = (warped - batch["target"]).abs()[0, :, moving].mean()
        error_still = (batch["image"] - batch["target"]).abs()[0, :, moving].mean()
        assert error_warped < 0.75 * error_still


def test_batches_are_a_function_of_their_index(stream):
    cache: dict = {}
    in_order = [stream.batch(b, cache) for b in range(4)]
    for b in (3, 1):
        assert_batches_equal(stream.batch(b), in_order[b])
    # Lanes of 2: batches 0 and 2 (lane 0) share their clips, at different frames; batch 1 (lane 1) does not.
    assert stream.layout(0)[0] == stream.layout(2)[0] != stream.layout(1)[0]
    assert not torch.equal(in_order[0]["time"], in_order[2]["time"])


def test_worker_lanes_deliver_the_batches_in_order_from_any_start(stream):
    for start in (0, 3):
        stream.start = start
        loader = iter(make_loader(stream, num_workers=2))
        for b in range(start, start + 3):
            assert_batches_equal(next(loader), stream.batch(b))
    stream.start = 0
    with pytest.raises(GIDInputError, match="lanes"):
        make_loader(stream, num_workers=1)


def test_mirrored_triple_is_the_mirror_image_with_negated_x_flow():
    clip = ProceduralClips(SIZE)(7)
    plain, mirrored = triple_batch([clip], [5], [False]), triple_batch([clip], [5], [True])
    for key in ("image", "target", "metric"):
        assert torch.equal(mirrored[key], plain[key].flip(-1))
    assert torch.equal(mirrored["flow"][:, 0], -plain["flow"][:, 0].flip(-1))
    assert torch.equal(mirrored["flow"][:, 1], plain["flow"][:, 1].flip(-1))


def test_held_out_seeds_are_never_trained_on():
    with pytest.raises(GIDInputError, match="held out"):
        ProceduralClips(SIZE, first_seed=HELD_OUT_SEED - 1)(1)
    with pytest.raises(GIDInputError, match="training seeds"):
        ProceduralClips(SIZE, first_seed=HELD_OUT_SEED)
    held_out = ProceduralClips(SIZE, first_seed=HELD_OUT_SEED, held_out=True)(0)
    assert held_out.frames.shape == (CLIP_FRAMES, SIZE[1], SIZE[0], 3)


def test_video_clips_give_frames_and_dis_flow(tmp_path):
    # A textured pattern sliding right by one pixel per frame: DIS finds about t pixels from frame 0 to frame t.
    rng = np.random.default_rng(0)
    texture = np.kron(rng.integers(0, 256, (30, 60, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    frames = np.stack([texture[20:84, 40 - t : 136 - t] for t in range(36)])
    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "slide.mp4", frames, fps=6.0)
    (tmp_path / "clips" / "short.mp4").write_bytes(b"not a video")
    source = VideoClips(tmp_path / "clips", size=(48, 32), num_frames=8, fps=6.0)
    clip = source(0)
    assert clip.frames.shape == (8, 32, 48, 3) and clip.displacements.shape == (8, 2, 32, 48)
    inner = clip.displacements[:, :, 8:-8, 8:-8]
    # The crop halves the frame: one source pixel per frame is half a pixel here.
    torch.testing.assert_close(inner[:, 0].median(dim=-1).values.median(dim=-1).values, torch.arange(8) * 0.5,
                               atol=0.25, rtol=0)  # fmt: skip
    assert inner[:, 1].abs().median() < 0.2
    with pytest.raises(GIDInputError, match="no video"):
        VideoClips(tmp_path / "clips", size=(48, 32), num_frames=100, fps=6.0)


def test_config_checks():
    with pytest.raises(GIDInputError, match="renderer"):
        config("out", model="vae")
    with pytest.raises(GIDInputError, match="size"):
        config("out", size=[16, 16])
    with pytest.raises(GIDInputError, match="batch size"):
        config("out", batch_size=0)
    with pytest.raises(GIDInputError, match="procedural"):
        open_clip_sources([], SIZE)


def evaluation_loss(model: SplatRenderer, batches: list[dict]) -> float:
    with torch.no_grad():
        return sum(render_loss(model(b["image"], b["flow"], b["metric"]), b["target"]).item() for b in batches)


def test_training_reduces_the_loss_and_exports_a_loadable_model(tmp_path):
    # Two 3-frame clips at 128x80 (motion of a few pixels), no mirroring: the stream alternates two batches, so 32
    # steps must lower their loss. (The untrained model is the pixel renderer, exact on still pixels, so the first
    # Adam steps raise the loss there; it takes a dozen steps to come back below.)
    run = config(tmp_path / "run", size=[128, 80], clip_frames=3, clip_fps=1.2, reuse=32, augment=False, steps=32,
                 checkpoint_every=32)  # fmt: skip
    export = train_renderer(run)
    losses = read_losses(run.output)
    assert [record["step"] for record in losses] == list(range(1, 33))
    assert {"l1", "ssim", "gradient", "psnr", "psnr_pixel", "temperature"} <= losses[0].keys()
    assert losses[0]["psnr"] == pytest.approx(losses[0]["psnr_pixel"], abs=1e-4)  # it starts as the pixel renderer
    trained = SplatRenderer.from_pretrained(export)
    torch.manual_seed(0)
    untrained = SplatRenderer(**TINY)
    batches = [open_triples(run, 0).batch(b) for b in range(2)]  # the two batches it was trained on
    assert evaluation_loss(trained, batches) < 0.99 * evaluation_loss(untrained, batches)


def test_resume_is_exact_and_cli_trains(tmp_path):
    options = ["--size", "48x32", "--batch-size", "2", "--num-workers", "1", "--warmup-steps", "2", "--lr", "3e-3",
               "--reuse", "2", "--checkpoint-every", "2", "--model-config", json.dumps(TINY)]  # fmt: skip
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert main(["train", "renderer", "-o", str(straight), "--steps", "4", *options]) == 0
    assert main(["train", "renderer", "-o", str(interrupted), "--steps", "2", *options]) == 0
    assert main(["train", "renderer", "-o", str(interrupted), "--steps", "4", "--resume"]) == 0
    assert read_losses(straight) == read_losses(interrupted)
    weights = "renderer/diffusion_pytorch_model.safetensors"
    for name, value in load_file(straight / weights).items():
        assert torch.equal(value, load_file(interrupted / weights)[name]), name
    saved = json.loads((straight / "run.json").read_text())
    assert saved["model"] == "renderer" and saved["data"] == ["procedural"] and saved["size"] == [48, 32]
    # Changing the data on resume is refused, with one line naming it.
    assert main(["train", "renderer", "-o", str(straight), "--steps", "6", "--resume", "--reuse", "3"]) == 2
    assert main(["train", "renderer", "-o", str(straight), "--steps", "6", "--resume", "--log-mse-weight", "1"]) == 2
    # A run saved before a loss term existed resumes with that term at its default (off).
    saved.pop("log_mse_weight")
    (straight / "run.json").write_text(json.dumps(saved))
    assert main(["train", "renderer", "-o", str(straight), "--steps", "6", "--resume"]) == 0
    assert [record["step"] for record in read_losses(straight)] == list(range(1, 7))


def test_log_mse_weight_reaches_the_loss(tmp_path):
    plain = train_renderer(config(tmp_path / "plain", steps=1, checkpoint_every=1))
    weighted = config(tmp_path / "weighted", steps=1, checkpoint_every=1, log_mse_weight=0.5)
    train_renderer(weighted)
    first, second = read_losses(tmp_path / "plain")[0], read_losses(weighted.output)[0]
    assert second["loss"] == pytest.approx(first["loss"] + 0.5 * first["log_mse"], rel=1e-5)
    assert plain.is_dir()
    with pytest.raises(GIDInputError, match="loss weights"):
        config("out", log_mse_weight=-1.0)


def test_fine_tuning_starts_from_the_given_renderer(tmp_path):
    """init_from loads a trained export: the first step's loss is the export's own on that batch."""
    base = train_renderer(config(tmp_path / "base", steps=2, checkpoint_every=2))
    run = config(tmp_path / "tuned", steps=2, checkpoint_every=2, model_config={}, init_from=str(base))
    export = train_renderer(run)
    start = SplatRenderer.from_pretrained(base)
    batch = open_triples(run, 0).batch(0)
    with torch.no_grad():
        l1 = (start(batch["image"], batch["flow"], batch["metric"]) - batch["target"]).abs().mean().item()
    assert read_losses(run.output)[0]["l1"] == pytest.approx(l1, rel=1e-4)
    assert SplatRenderer.from_pretrained(export).config.scale_channels == start.config.scale_channels
    with pytest.raises(GIDInputError, match="not both"):
        train_renderer(config(tmp_path / "both", init_from=str(base)))
    with pytest.raises(GIDInputError, match="cannot load the renderer"):
        train_renderer(config(tmp_path / "missing", model_config={}, init_from=str(tmp_path / "no_export")))
