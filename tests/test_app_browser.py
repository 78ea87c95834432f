"""The app in a real browser: Debian's chromium, driven by playwright, against the app served by this process.

Upload a photo on the Click-to-poke tab, click a point of it, press Poke, and a video plays; mistakes (poking before
choosing a point, uploading a file that is no picture) show a message, never a traceback, and keep what was there.
The model is the tiny random pipeline of test_app.py, so prediction costs a fraction of a second.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_app import app_module, checkpoint  # noqa: F401 (fixtures)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

PHOTO = Path(__file__).resolve().parents[1] / "assets" / "examples" / "dandelion.jpg"  # 1024x640
TIMEOUT_MS = 60_000
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def url(app_module, checkpoint):  # noqa: F811 (fixtures)
    demo = app_module.build_demo(checkpoint)
    app_module.launch(demo, prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def page(url):
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.set_default_timeout(TIMEOUT_MS)
        playwright.expect.set_options(timeout=TIMEOUT_MS)  # a busy machine can take seconds to answer
        page.goto(url)
        yield page
        browser.close()


def set_slider(page, elem_id: str, value: int) -> None:
    """Type a value into a slider's number box (as a user can)."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_click_a_point_poke_and_watch_the_video_with_errors_shown_as_messages(page, tmp_path):
    playwright.expect(page.get_by_role("tab", name="Click to poke")).to_be_visible()
    page.get_by_role("tab", name="Click to poke").click()
    set_slider(page, "poke-size", 128)
    set_slider(page, "poke-frames", 20)

    page.locator("#poke-photo input[type=file]").set_input_files(PHOTO)
    target = page.locator("#poke-target img")
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

    page.locator("#poke-button").click()
    video = page.locator("#poke-video video")
    playwright.expect(video).to_have_attribute("src", re.compile(r"poke-[0-9a-f]+\.mp4$"))
    src = video.get_attribute("src")
    # The browser reads the file's header (readyState >= HAVE_METADATA): an H.264 mp4 it can play.
    page.wait_for_function("() => document.querySelector('#poke-video video').readyState >= 1")
    assert page.evaluate("() => document.querySelector('#poke-video video').error") is None

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

    page.locator("#clip-send").click()
    playwright.expect(page.get_by_role("tab", name="Click to poke")).to_have_attribute("aria-selected", "true")
    playwright.expect(page.locator("#poke-target img")).to_be_visible()  # the clip's first frame, to click on
    playwright.expect(page.get_by_text(re.compile(r"^clip-spectral-volume-\w+")).first).to_be_visible()
