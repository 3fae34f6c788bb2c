"""The web page end to end in headless Chromium: upload a photo and see it painted, upload a
clip and play the result, open the live camera (Chromium's fake one) and see painted frames.

Playwright drives the system's Chromium (`apt-get install chromium`); Playwright's own browser
download is not used. Without either, the tests skip and say which is missing.
"""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import make_tiny_style
from PIL import Image
from video_helpers import write_clip

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs playwright: pip install playwright "
                                  "(its browser download is not needed; Chromium comes from apt)")
pytest.importorskip("uvicorn", reason="the web app needs the serve extra: pip install -e .[serve]")

from rtstyle.models import registry  # noqa: E402
from rtstyle.server import ServerConfig, create_app  # noqa: E402
from rtstyle.server.background import BackgroundServer  # noqa: E402

CHROMIUM = os.environ.get("RTSTYLE_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
TIMEOUT_MS = 30_000

if CHROMIUM is None:
    pytest.skip("no Chromium found (apt-get install chromium, or set RTSTYLE_CHROMIUM)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    (home / "styles").mkdir()
    for name, seed in (("tiny", 0), ("tiny2", 1)):
        make_tiny_style(home / "styles" / f"{name}.v1.safetensors", name=name, seed=seed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RTSTYLE_HOME", str(home))
        patch.setattr(registry, "MANIFEST", home / "no-manifest.json")
        config = ServerConfig(device="cpu", backend="eager", live_max_side=160,
                              temp_parent=tmp_path_factory.mktemp("server"))
        with BackgroundServer(create_app(config)) as running:
            yield running


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    page.wait_for_selector('.card[data-style="tiny"]')
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_upload_a_photo_and_see_it_painted(page, shared_data):
    photo = sorted((shared_data / "content" / "eval").glob("*.jpg"))[0]
    width, height = Image.open(photo).size
    page.set_input_files("#file-input", str(photo))
    page.wait_for_function("() => { const i = document.getElementById('output-media');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert page.eval_on_selector("#output-media", "e => [e.naturalWidth, e.naturalHeight]") \
        == [width, height]
    assert page.eval_on_selector("#input-media", "e => e.naturalWidth") == width
    assert "tiny.v1" in page.text_content("#message")
    assert page.get_attribute("#download", "download").endswith("-tiny.jpg")
    difference = page.evaluate("""() => {
        const pixels = (id) => {
            const img = document.getElementById(id);
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(img, 0, 0);
            return ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        };
        const a = pixels('input-media'), b = pixels('output-media');
        let sum = 0;
        for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
        return sum / a.length;
    }""")
    assert difference > 10, "the result looks like the photo: not painted"


def test_upload_a_clip_and_play_the_result(page, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=8, width=64, height=48, audio_rate=44100)
    page.set_input_files("#file-input", str(clip))
    page.wait_for_function("() => { const v = document.getElementById('output-media');"
                           " return v && v.tagName === 'VIDEO' && v.readyState >= 2; }")
    assert page.eval_on_selector("#output-media", "v => [v.videoWidth, v.videoHeight]") == [64, 48]
    assert page.is_hidden("#job"), "the progress bar should go once the job is done"
    assert "audio kept" in page.text_content("#message")


def test_live_camera_frames_come_back_painted_and_styles_switch(page):
    page.click("#tab-live")
    page.click("#live-start")
    page.wait_for_function("() => Number(document.getElementById('live-output').dataset.frames) >= 5")
    assert "fps" in page.text_content("#live-stats")
    assert float(page.get_attribute("#live-stats", "data-rtt-ms")) > 0
    page.click('.card[data-style="tiny2"]')
    # The switch is confirmed by the server; the engine's warm-up statuses that follow keep
    # the style's name in the line.
    page.wait_for_function("() => document.getElementById('live-message').dataset.style"
                           " === 'tiny2.v1'")
    assert "tiny2.v1" in page.text_content("#live-message")
    seen = int(page.get_attribute("#live-output", "data-frames"))
    page.wait_for_function(f"() => Number(document.getElementById('live-output').dataset.frames)"
                           f" >= {seen + 3}")
    page.click("#live-stop")
    assert page.is_enabled("#live-start")
