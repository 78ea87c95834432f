"""The app in a real browser: Debian's chromium, driven by playwright, against the app served by this process.

Run an example loop on the Loop tab and the video plays; the Click-to-poke tab then holds that photo, a click and
Poke play its response without predicting again. Upload a photo on the Click-to-poke tab, click a point of it,
press Poke, and a video plays; mistakes (poking before choosing a point, uploading a file that is no picture) show
a message, never a traceback, and keep what was there. A clip example's loop hands its motion to the poke tab.
A stroke of the Loop tab's motion brush reaches the model as "moves" where it was painted (on a checkpoint that
takes motion masks). The model is the tiny random pipeline of test_app.py, so prediction costs a fraction of a
second. Screenshots go to $GID_TEST_ARTIFACTS (default tests/artifacts/).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_app import app_module, checkpoint, mask_checkpoint  # noqa: F401 (fixtures)

from gid_pipeline.spectral.volume import SpectralVolume

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

PHOTO = Path(__file__).resolve().parents[1] / "assets" / "examples" / "dandelion.jpg"  # 1024x640
TIMEOUT_MS = 60_000
ARTIFACTS = Path(os.environ.get("GID_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
pytestmark = pytest.mark.usefixtures("one_thread")


def _serve(app, folder):
    """Launch the app (module) on a checkpoint folder in this process; yields (url, the MotionEngine behind it)."""
    demo = app.build_demo(folder)
    app.launch(demo, prevent_thread_lock=True, quiet=True)
    yield demo.local_url, app.engine_for(str(folder.resolve()))
    demo.close()


@pytest.fixture(scope="module")
def served(app_module, checkpoint):  # noqa: F811 (fixtures)
    """(url, engine): the app launched in this process, and the MotionEngine behind it."""
    yield from _serve(app_module, checkpoint)


@pytest.fixture(scope="module")
def url(served):
    return served[0]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--headless=new",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        playwright.expect.set_options(timeout=TIMEOUT_MS)  # a busy machine can take seconds to answer
        yield browser
        browser.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def page(browser, url):
    page = open_page(browser, url)
    yield page
    page.close()


@pytest.fixture(scope="module")
def mask_served(app_module, mask_checkpoint):  # noqa: F811 (fixtures)
    """(url, engine) of the app on the checkpoint whose U-Net takes motion masks."""
    yield from _serve(app_module, mask_checkpoint)


def set_slider(page, elem_id: str, value: int) -> None:
    """Type a value into a slider's number box (as a user can)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def screenshot(page, name: str) -> None:
    """Save the page as ARTIFACTS/<name>.png, for a person to look at (CI keeps the folder)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def wait_until_playable(page, elem_id: str) -> None:
    """The <video> in #elem_id has decoded a frame (readyState >= HAVE_CURRENT_DATA) without a media error."""
    page.wait_for_function(f"() => document.querySelector('#{elem_id} video')?.readyState >= 2")
    assert page.evaluate(f"() => document.querySelector('#{elem_id} video').error") is None


def test_an_example_loop_plays_and_the_poke_tab_takes_its_photo_and_motion(page, served):
    _, engine = served
    playwright.expect(page.get_by_role("tab", name="Loop")).to_be_visible()
    set_slider(page, "loop-size", 128)
    set_slider(page, "loop-fps", 8)  # 40 frames for the 5 s loop
    page.locator("#loop-examples button.gallery-item").first.click()  # meadow.jpg
    playwright.expect(page.locator("#loop-photo img")).to_be_visible()
    page.locator("#loop-button").click()

    video = page.locator("#loop-video video")
    playwright.expect(video).to_have_attribute("src", re.compile(r"loop-[0-9a-f]+\.mp4$"))
    wait_until_playable(page, "loop-video")
    assert page.evaluate("() => document.querySelector('#loop-video video').loop") is True
    playwright.expect(page.locator("#loop-info")).to_contain_text("5 s loop; 40 frames per loop at 8 fps")
    playwright.expect(page.locator("#loop-gif").get_by_text(re.compile(r"^loop-\w+"))).to_be_visible()
    assert page.locator("#loop-gif a").first.get_attribute("href").endswith(".gif")  # the download link
    playwright.expect(page.locator("#loop-heatmap img")).to_be_visible()
    screenshot(page, "loop")
    predictions = engine.predictions

    # The poke tab now holds the loop's photo and sampling settings: its motion is already in the cache.
    page.get_by_role("tab", name="Click to poke").click()
    target = page.locator("#poke-target img")
    playwright.expect(target).to_be_visible()
    set_slider(page, "poke-size", 128)
    set_slider(page, "poke-frames", 20)
    box = target.bounding_box()
    target.click(position={"x": 0.5 * box["width"], "y": 0.6 * box["height"]})
    playwright.expect(page.locator("#poke-x input")).not_to_have_value("")
    assert float(page.locator("#poke-y input").input_value()) == pytest.approx(0.6 * 819, abs=8)  # meadow: 1024x819
    page.locator("#poke-button").click()
    playwright.expect(page.locator("#poke-video video")).to_have_attribute("src", re.compile(r"poke-[0-9a-f]+\.mp4$"))
    wait_until_playable(page, "poke-video")
    assert engine.predictions == predictions  # the first poke reused the loop's prediction
    assert page.locator("#poke-x input").input_value() != ""  # no late repeat of the photo's change wiped the point
    screenshot(page, "poke-after-loop")


def test_click_a_point_poke_and_watch_the_video_with_errors_shown_as_messages(page, tmp_path):
    playwright.expect(page.get_by_role("tab", name="Click to poke")).to_be_visible()
    page.get_by_role("tab", name="Click to poke").click()
    set_slider(page, "poke-size", 128)
    set_slider(page, "poke-frames", 20)

    target = page.locator("#poke-target img")
    earlier = target.get_attribute("src") if target.count() else None  # the loop test's photo, if it ran first
    page.locator("#poke-photo input[type=file]").set_input_files(PHOTO)
    if earlier is not None:
        playwright.expect(target).not_to_have_attribute("src", earlier)
    target.wait_for()
    unmarked = target.get_attribute("src")

    # Poking before choosing a point: a message, not a traceback.
    page.locator("#poke-button").click()
    playwright.expect(page.get_by_text("No point chosen: click the photo").first).to_be_visible()
    assert "Traceback" not in page.locator("body").inner_text()

    # Click 50% across and 30% down the picture: the point is stored in photo pixels and drawn.
    box = target.bounding_box()
    target.click(position={"x": 0.5 * box["width"], "y": 0.3 * box["height"]})
    playwright.expect(page.locator("#poke-x input")).not_to_have_value("")
    x = float(page.locator("#poke-x input").input_value())
    y = float(page.locator("#poke-y input").input_value())
    assert x == pytest.approx(0.5 * 1024, abs=8) and y == pytest.approx(0.3 * 640, abs=8)
    playwright.expect(target).not_to_have_attribute("src", unmarked)  # the marker was drawn

    video = page.locator("#poke-video video")
    earlier = video.get_attribute("src") if video.count() else None
    page.locator("#poke-button").click()
    if earlier is not None:
        playwright.expect(video).not_to_have_attribute("src", earlier)
    playwright.expect(video).to_have_attribute("src", re.compile(r"poke-[0-9a-f]+\.mp4$"))
    src = video.get_attribute("src")
    wait_until_playable(page, "poke-video")  # an H.264 mp4 the browser decodes

    # A file that is no picture: a message, and the earlier result stays.
    text = tmp_path / "notes.png"
    text.write_text("this is text, not a picture")
    page.locator("#poke-photo input[type=file]").set_input_files(text)
    playwright.expect(page.get_by_text("notes.png is not an image").first).to_be_visible()
    assert "Traceback" not in page.locator("body").inner_text()
    assert video.get_attribute("src") == src


def test_a_clip_example_makes_a_loop_whose_motion_the_poke_tab_takes_over(page):
    page.get_by_role("tab", name="From video").click()
    set_slider(page, "clip-size", 128)
    page.locator("[data-testid=dataset-cell-0-0]").click()  # the tree clip example: frames 0-53
    playwright.expect(page.locator("#clip-video").get_by_text("Seamless loop")).to_be_visible()
    page.get_by_role("button", name="Make a loop").click()
    playwright.expect(page.locator("#clip-video video")).to_have_attribute("src", re.compile(r"clip-loop-\w+\.mp4$"))
    wait_until_playable(page, "clip-video")

    page.locator("#clip-send").click()
    playwright.expect(page.get_by_role("tab", name="Click to poke")).to_have_attribute("aria-selected", "true")
    playwright.expect(page.locator("#poke-target img")).to_be_visible()  # the clip's first frame, to click on
    playwright.expect(page.get_by_text(re.compile(r"^clip-spectral-volume-\w+")).first).to_be_visible()
    screenshot(page, "poke-from-clip")


def test_a_brush_stroke_tells_the_model_that_the_photo_moves_there_and_only_there(browser, mask_served):
    url, engine = mask_served
    page = open_page(browser, url)
    set_slider(page, "loop-size", 64)
    set_slider(page, "loop-fps", 8)
    page.locator("#loop-photo input[type=file]").set_input_files(PHOTO)  # 1024x640
    page.get_by_text("Motion brush (optional)").click()
    canvas = page.locator("#loop-brush canvas").first
    # The photo arrives on the brush's canvas (a WebGL canvas: seen in a screenshot of it, not in the DOM).
    for _ in range(120):
        if np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L")).std() > 10:
            break
        page.wait_for_timeout(500)
    else:
        pytest.fail("the photo never appeared under the motion brush")

    # One horizontal stroke of the white brush (the default) through the canvas's centre, 40 % of its width long.
    box = canvas.bounding_box()
    x, y = box["x"] + 0.3 * box["width"], box["y"] + 0.5 * box["height"]
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + step * 0.02 * box["width"], y)
    page.mouse.up()
    page.locator("#loop-button").click()
    link = page.locator("a[href*='spectral-volume-']").first
    playwright.expect(link).to_be_visible()
    wait_until_playable(page, "loop-video")
    screenshot(page, "loop-brush")

    # The spectral volume file holds the mask the model was given, on the model's grid.
    volume = SpectralVolume.load(re.search(r"file=(.*\.safetensors)$", link.get_attribute("href")).group(1))
    moves, still = volume.motion_mask.numpy()
    rows, columns = moves.shape
    assert not still.any()  # nothing painted black
    assert moves[rows // 2, int(0.35 * columns) : int(0.65 * columns)].min() > 0.5  # along the stroke
    painted = np.argwhere(moves > 0)
    assert painted[:, 0].min() > 0.3 * rows and painted[:, 0].max() < 0.7 * rows  # a band around the middle row
    assert painted[:, 1].min() > 0.1 * columns and painted[:, 1].max() < 0.9 * columns

    # Animate again without painting: the same painting is sent, so the cached motion is used.
    predictions, href = engine.predictions, link.get_attribute("href")
    page.locator("#loop-button").click()
    playwright.expect(link).not_to_have_attribute("href", href)
    again = SpectralVolume.load(re.search(r"file=(.*\.safetensors)$", link.get_attribute("href")).group(1))
    assert engine.predictions == predictions and np.array_equal(again.motion_mask.numpy()[0], moves)
    page.close()
