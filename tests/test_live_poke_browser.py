"""The live poke in a real browser: Debian's chromium (software WebGL2 through SwiftShader) driven by playwright.

A page holding only the widget (static/live_poke.js, as the package ships it) gets the payload of a synthetic scene
(test_live_poke.disc_volume: a disc that sways, everything else exactly still) on a real photo. Dragging moves the
pixels near the pointer and never those where the modes are zero, and after release the motion dies down, with
WebGL2 and with the Canvas 2D path; a finger and a stylus drag as a mouse does; the browser's simulation of a known
impulse and drag matches dynamics.modal_coordinates on the same basis; Record hands the server a recording it
accepts; an oversize basis, a photo without motion and a browser without either canvas API each get a message.
Last, the app itself: a photo on the Click-to-poke tab reaches the live canvas, and a drag and Record give the poke
video. Screenshots go to $GID_TEST_ARTIFACTS/live_poke (default tests/artifacts/live_poke).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_app import app_module, checkpoint  # noqa: F401 (fixtures)
from test_live_poke import CENTRE, LIVE_HEIGHT, LIVE_WIDTH, PHOTO, RADIUS, disc_volume, live_photo

from gid_pipeline.app import live
from gid_pipeline.motion.dynamics import ModalBasis, Poke, modal_coordinates, modal_displacements
from gid_pipeline.spectral.volume import SpectralVolume

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium", allow_module_level=True)

# Software WebGL2 (ANGLE on SwiftShader), as on a machine without a GPU; no background traffic.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    # Compositing on SwiftShader redraws the whole viewport every frame (no partial swap): 15 fps on a 1280x1400
    # page where Skia's software compositor, redrawing only the canvas, gives 40. WebGL stays on SwiftShader.
    "--disable-gpu-compositing",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 120_000  # a prediction on a busy machine can take a while
ARTIFACTS = Path(os.environ.get("GID_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts") / "live_poke"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def payload() -> str:
    return live.photo_payload(live_photo(), disc_volume())


def widget_page(browser, payload: str | None, renderer: str = "auto", prepare: str | None = None):
    """A page holding the widget alone, 512 CSS px wide, with payload loaded; Record's data lands in
    window.recorded. prepare: JavaScript run before the widget is mounted."""
    page = browser.new_page(viewport={"width": 700, "height": 600})
    page.set_default_timeout(TIMEOUT_MS)
    page.set_content("<div id='root' style='width: 512px'></div>")
    if prepare:
        page.evaluate(prepare)
    page.add_script_tag(content=live.browser_script())
    page.evaluate(
        """([renderer, payload]) => {
            window.recorded = [];
            window.live = mountLivePoke(document.getElementById('root'),
                                        {renderer, trigger: (name, data) => window.recorded.push([name, data])});
            return window.live.load(payload);
        }""",
        [renderer, payload],
    )
    return page


def to_page(page, x: float, y: float) -> tuple[float, float]:
    """Photo pixel (x, y) of the live canvas -> page coordinates for the mouse."""
    box = page.locator("#live-poke-canvas").bounding_box()
    return box["x"] + (x + 0.5) * box["width"] / LIVE_WIDTH, box["y"] + (y + 0.5) * box["height"] / LIVE_HEIGHT


def pixels(page) -> np.ndarray:
    """The frame of the current state, (H, W, 3) int, read back from the page."""
    data = page.evaluate("() => Array.from(document.getElementById('live-poke-canvas').livePoke.pixels())")
    return np.asarray(data, dtype=np.int32).reshape(LIVE_HEIGHT, LIVE_WIDTH, 4)[..., :3]


def swing(page, seconds: float) -> float:
    """Largest |D| (px) at the disc's centre over the next ``seconds``, sampled every displayed frame."""
    return page.evaluate(
        """([x, y, seconds]) => new Promise((done) => {
            const sim = document.getElementById('live-poke-canvas').livePoke.simulator;
            const end = performance.now() + 1000 * seconds;
            let largest = 0;
            const look = () => {
                largest = Math.max(largest, Math.hypot(...sim.displacementAt(x, y)));
                if (performance.now() < end) requestAnimationFrame(look); else done(largest);
            };
            requestAnimationFrame(look);
        })""",
        [CENTRE[0], CENTRE[1], seconds],
    )


def screenshot(page, name: str) -> None:
    """Save the page as ARTIFACTS/<name>.png, for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def still_mask() -> np.ndarray:
    """(H, W) bool: pixels well outside the moving disc (its mode shapes are exactly zero there, and no moving
    pixel can reach them: displacements stay under the 32 px limit)."""
    ys, xs = np.mgrid[:LIVE_HEIGHT, :LIVE_WIDTH]
    return np.hypot(xs - CENTRE[0], ys - CENTRE[1]) > RADIUS + 40


@pytest.mark.parametrize(("renderer", "name"), [("webgl2", "WebGL2"), ("2d", "Canvas 2D")])
def test_a_drag_moves_the_photo_near_the_pointer_not_its_still_parts_and_then_settles(browser, payload, renderer, name):
    page = widget_page(browser, payload, renderer)
    assert page.evaluate("() => live.rendererName") == name
    playwright.expect(page.locator("#live-poke-canvas")).to_be_visible()
    at_rest = pixels(page)
    assert np.abs(at_rest - live_photo().astype(np.int32)).mean() < 3  # the photo itself (JPEG-coded)

    page.mouse.move(*to_page(page, *CENTRE))
    page.mouse.down()
    page.mouse.move(*to_page(page, CENTRE[0] + 30, CENTRE[1] - 12), steps=8)
    page.wait_for_timeout(600)  # held: the disc follows the pull
    pulled = pixels(page)
    screenshot(page, f"drag-{renderer}")
    ys, xs = np.mgrid[:LIVE_HEIGHT, :LIVE_WIDTH]
    near = np.hypot(xs - CENTRE[0], ys - CENTRE[1]) < 30
    assert np.abs(pulled - at_rest)[near].mean() > 5  # the pixels near the pointer moved
    assert np.array_equal(pulled[still_mask()], at_rest[still_mask()])  # still parts are exactly the photo

    page.mouse.up()
    early = swing(page, 1.5)
    page.wait_for_timeout(1500)
    late = swing(page, 1.5)
    screenshot(page, f"settling-{renderer}")
    assert 0 < late < 0.8 * early  # it swings back and dies down
    assert np.array_equal(pixels(page)[still_mask()], at_rest[still_mask()])
    log = page.evaluate("() => live.log")
    assert log and all(poke["hold"] > 0 for poke in log)  # the drag, as held stretches of force
    page.close()


PEN = {"pointerType": "pen", "button": "left", "clickCount": 1}


def cdp_press(cdp, kind: str, phase: str, at: tuple[float, float]) -> None:
    """A finger ("touch") or a stylus ("pen") pressing ("start"), moving ("move") or lifting ("end") at page point
    ``at``, through the DevTools protocol (what a touchscreen or tablet driver would send)."""
    if kind == "touch":
        points = [] if phase == "end" else [{"x": at[0], "y": at[1]}]
        cdp.send("Input.dispatchTouchEvent", {"type": f"touch{phase.title()}", "touchPoints": points})
    else:
        event = {"start": "mousePressed", "move": "mouseMoved", "end": "mouseReleased"}[phase]
        cdp.send("Input.dispatchMouseEvent", {"type": event, "x": at[0], "y": at[1], "buttons": 1, **PEN})


@pytest.mark.parametrize("kind", ["touch", "pen"])
def test_a_finger_or_a_stylus_drags_the_photo_too(browser, payload, kind):
    context = browser.new_context(has_touch=True, viewport={"width": 700, "height": 600})
    page = context.new_page()
    page.set_content("<div id='root' style='width: 512px'></div>")
    page.add_script_tag(content=live.browser_script())
    page.evaluate(
        "(payload) => { window.kinds = []; addEventListener('pointerdown', (e) => kinds.push(e.pointerType), true);"
        " window.live = mountLivePoke(document.getElementById('root')); return live.load(payload); }",
        payload,
    )
    cdp = context.new_cdp_session(page)
    start = to_page(page, *CENTRE)
    steps = [(start[0] + 3 * i, start[1]) for i in range(1, 9)]
    cdp_press(cdp, kind, "start", start)
    for step in steps:
        cdp_press(cdp, kind, "move", step)
    page.wait_for_timeout(400)
    assert page.evaluate("() => live.simulator.forced()")  # held: the force is on
    pulled = page.evaluate(f"() => live.simulator.displacementAt({CENTRE[0]}, {CENTRE[1]})")
    assert pulled[0] > 2  # the disc follows the pull to the right
    cdp_press(cdp, kind, "end", steps[-1])
    page.wait_for_timeout(100)
    assert page.evaluate("() => [kinds, live.simulator.forced(), live.log.length > 0]") == [[kind], False, True]
    context.close()


def test_a_known_impulse_and_drag_follow_the_python_simulation_within_2_percent(browser, payload):
    """The page's simulator (stepped exactly, frame by frame) against dynamics.modal_coordinates (closed form) on
    the same basis: the payload read back in Python, upsampled as the browser samples it."""
    page = widget_page(browser, payload)
    basis = live.read_payload(payload).to_modal_basis()
    steps, dt = 150, 1 / 30
    times = torch.arange(steps, dtype=torch.float64) * dt
    for poke in [Poke(260, 118, 8.0, -3.0), Poke(241, 130, -20.0, 6.0, hold=0.5)]:
        fields = {"x": poke.x, "y": poke.y, "dx": poke.dx, "dy": poke.dy, "hold": poke.hold}
        browser_run = page.evaluate("([poke, steps, dt]) => live.trajectory(poke, steps, dt)", [fields, steps, dt])
        q = modal_coordinates(basis, [poke], times)
        expected = torch.stack([q.real, q.imag], dim=-1).reshape(steps, -1).numpy()
        got = np.asarray(browser_run["q"])
        assert np.abs(got - expected).max() <= 0.02 * np.abs(expected).max()
        displacement = modal_displacements(basis, q)[:, :, int(poke.y), int(poke.x)].numpy()
        got = np.asarray(browser_run["displacement"])
        assert np.abs(got - displacement).max() <= 0.02 * np.abs(displacement).max()
        assert np.abs(displacement).max() > 1.0  # a real swing, not two zeros agreeing
    page.close()


def test_record_hands_the_server_a_recording_it_accepts(browser, payload):
    page = widget_page(browser, payload)
    page.locator("button[name=record]").click()
    playwright.expect(page.get_by_text("Drag the photo first")).to_be_visible()
    assert page.evaluate("() => window.recorded") == []

    page.locator("input[name=damping]").fill("0.35")
    page.locator("input[name=stiffness]").fill("2")
    page.mouse.move(*to_page(page, *CENTRE))
    page.mouse.down()
    page.mouse.move(*to_page(page, CENTRE[0] - 20, CENTRE[1]), steps=5)
    page.wait_for_timeout(300)
    page.mouse.up()
    page.locator("button[name=record]").click()
    playwright.expect(page.get_by_text("Recording sent")).to_be_visible()
    [(event, data)] = page.evaluate("() => window.recorded")
    assert event == "record"
    interaction = live.parse_interaction(data, (LIVE_HEIGHT, LIVE_WIDTH))
    assert (interaction.params.damping, interaction.params.stiffness) == (0.35, 2.0)
    # The video starts at the press; the force, at the first move.
    assert 0 <= interaction.pokes[0].start < 0.5 and interaction.pokes[-1].dx == pytest.approx(-20, abs=1)
    page.close()


def test_an_oversize_basis_is_refused_with_a_message(browser):
    basis = ModalBasis.from_volume(disc_volume(), LIVE_HEIGHT, LIVE_WIDTH)
    big = live.live_payload(live_photo(), live.pack_live_basis(basis, grid_side=384, bits=16), max_bytes=math.inf)
    assert len(big) > live.MAX_PAYLOAD_BYTES
    page = widget_page(browser, big)
    playwright.expect(page.get_by_text(re.compile(r"The motion basis is \d+\.\d MB, over the 4\.0 MB"))).to_be_visible()
    playwright.expect(page.locator("#live-poke-canvas")).to_be_hidden()
    screenshot(page, "oversize")
    page.close()


def test_a_photo_without_motion_shows_a_message_instead_of_a_dead_canvas(browser):
    still = SpectralVolume(torch.zeros(16, 4, LIVE_HEIGHT // 2, LIVE_WIDTH // 2), 150, 30.0)
    page = widget_page(browser, live.photo_payload(live_photo(), still))
    playwright.expect(page.get_by_text("This photo has no predicted motion")).to_be_visible()
    playwright.expect(page.locator("#live-poke-canvas")).to_be_hidden()
    playwright.expect(page.locator("button[name=record]")).to_be_hidden()
    screenshot(page, "no-motion")
    page.close()


def test_a_browser_without_webgl2_or_canvas_2d_gets_a_message(browser, payload):
    page = widget_page(browser, payload, prepare="HTMLCanvasElement.prototype.getContext = () => null")
    playwright.expect(page.get_by_text("can draw neither WebGL2 nor Canvas 2D")).to_be_visible()
    playwright.expect(page.locator("#live-poke-canvas")).to_be_hidden()
    page.close()


# ------------------------------------------------------------------------------------------------ in the app


@pytest.fixture(scope="module")
def app_url(app_module, checkpoint):  # noqa: F811 (fixtures)
    demo = app_module.build_demo(checkpoint)
    app_module.launch(demo, prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


def test_the_app_sends_a_photos_basis_to_the_live_canvas_and_records_a_drag_as_a_video(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.set_default_timeout(TIMEOUT_MS)
    playwright.expect.set_options(timeout=TIMEOUT_MS)
    page.goto(app_url)
    page.get_by_role("tab", name="Click to poke").click()
    playwright.expect(page.get_by_text("Upload a photo (or pick an example) to poke it live")).to_be_visible()
    page.locator("#poke-photo input[type=file]").set_input_files(PHOTO)
    canvas = page.locator("#live-poke-canvas")
    playwright.expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()
    basis = page.evaluate("() => { const b = document.getElementById('live-poke-canvas').livePoke.basis; "
                          "return {width: b.width, height: b.height, bytes: b.bytes}; }")  # fmt: skip
    assert (basis["width"], basis["height"]) == (512, 320) and basis["bytes"] < live.MAX_PAYLOAD_BYTES

    box = canvas.bounding_box()
    x, y = box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y - 10, steps=6)
    page.wait_for_timeout(300)
    page.mouse.up()
    screenshot(page, "app-drag")
    page.locator("#live-poke button[name=record]").click()
    video = page.locator("#poke-video video")
    playwright.expect(video).to_have_attribute("src", re.compile(r"poke-[0-9a-f]+\.mp4$"))
    page.wait_for_function("() => document.querySelector('#poke-video video')?.readyState >= 2")
    assert "Traceback" not in page.locator("body").inner_text()
    screenshot(page, "app-recorded")
    page.close()
