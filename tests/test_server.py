"""`rtstyle serve`: every endpoint and every limit, in process (Starlette's TestClient), with
tiny real styles on the CPU and the eager backend, so nothing compiles."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import threading
import time
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import make_tiny_style
from PIL import Image
from typer.testing import CliRunner
from video_helpers import write_clip

pytest.importorskip("fastapi", reason="the web app needs the serve extra: pip install -e .[serve]")
with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx still works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from rtstyle.server import ServerConfig, create_app  # noqa: E402

BASE = "http://127.0.0.1:8000"
WS = "ws://127.0.0.1:8000/api/live"


@pytest.fixture
def tiny_styles(rtstyle_home, no_bundled, one_torch_thread):
    for name, seed in (("tiny", 0), ("tiny2", 1)):
        make_tiny_style(rtstyle_home / "styles" / f"{name}.v1.safetensors", name=name, seed=seed)


@contextlib.contextmanager
def serving(tmp_path: Path, **options):
    """A started app (lifespan run) and its state; the temp dir is checked gone after."""
    parent = tmp_path / "server-tmp"
    parent.mkdir(exist_ok=True)
    config = ServerConfig(device="cpu", backend="eager", temp_parent=parent, **options)
    with TestClient(create_app(config), base_url=BASE) as client:
        yield client, client.app.state.server
    assert list(parent.iterdir()) == [], "the server's temp dir outlived it"


def image_bytes(w=67, h=41, fmt="JPEG", seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def stylize(client, data: bytes, name="photo.jpg", **fields):
    fields.setdefault("style", "tiny")
    return client.post("/api/stylize", files={"file": (name, data, "application/octet-stream")},
                       data={k: str(v) for k, v in fields.items()})


def submit(client, path: Path, **fields):
    fields.setdefault("style", "tiny")
    return client.post("/api/jobs", files={"file": (path.name, path.read_bytes(), "video/mp4")},
                       data={k: str(v) for k, v in fields.items()})


def wait_job(client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {status}")


def leftovers(state) -> list[Path]:
    return [p for p in state.root.rglob("*") if p.is_file()]


# Styles and info ------------------------------------------------------------------------------

def test_styles_list_the_installed_ones_with_their_pictures(tmp_path, rtstyle_home):
    with serving(tmp_path) as (client, _):
        listing = client.get("/api/styles").json()
        names = {s["name"]: s for s in listing["styles"]}
        assert names["monet"]["arch"] == "johnson-mid" and "monet-lite" in names
        # the bundled AdaIN model: any painting, at its recommended strength
        assert listing["arbitrary_style"] is True
        assert names["adain"]["needs_style_image"] and names["adain"]["default_strength"] == 0.75
        for name in ("monet", "monet-lite"):  # the gallery picture of each
            picture = client.get(names[name]["image_url"])
            assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
        assert client.get("/api/styles/monet/image").status_code == 200
        assert client.get("/api/styles/nope/image").status_code == 404
        info = client.get("/api/info").json()
        assert info["device"] == "cpu" and info["auth"] is False
        assert info["limits"]["max_upload_bytes"] == ServerConfig().max_upload_bytes
        docs = client.get("/openapi.json").json()
        assert {"/api/styles", "/api/stylize", "/api/jobs", "/api/jobs/{job_id}",
                "/api/jobs/{job_id}/result"} <= set(docs["paths"])
        body = docs["paths"]["/api/stylize"]["post"]["requestBody"]["content"]
        assert "file" in body["multipart/form-data"]["schema"]["properties"]
        page = client.get("/")
        assert page.status_code == 200 and "rtstyle" in page.text
        assert client.get("/static/app.js").status_code == 200


# Stills ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "fields", "want_format", "want_size"), [
    ("JPEG", {}, "JPEG", (67, 41)),
    ("PNG", {"strength": 0.5}, "PNG", (67, 41)),
    ("BMP", {}, "PNG", (67, 41)),
    ("JPEG", {"format": "webp", "max_side": 33}, "WEBP", (33, 20)),
    ("PNG", {"size": "134x-1"}, "PNG", (134, 82)),
    ("PNG", {"style_scale": "0.5"}, "PNG", (67, 41)),
])
def test_stylize_returns_the_image_same_size_and_format(tmp_path, tiny_styles, fmt, fields,
                                                        want_format, want_size):
    with serving(tmp_path) as (client, state):
        response = stylize(client, image_bytes(fmt=fmt), name=f"my photo.{fmt.lower()}", **fields)
        assert response.status_code == 200, response.text
        out = Image.open(io.BytesIO(response.content))
        assert (out.format, out.size) == (want_format, want_size)
        assert response.headers["x-rtstyle-style"] == "tiny.v1"
        assert 'filename="my_photo-tiny.' in response.headers["content-disposition"]
        assert leftovers(state) == []


def test_a_bad_style_scale_is_a_400(tmp_path, tiny_styles):
    with serving(tmp_path) as (client, _):
        response = stylize(client, image_bytes(), style_scale="0")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("style_scale must be in (0, 4] (e.g. 0.5), auto or auto:N")


def test_colour_switches_are_the_clis_preserve_color_and_photoreal(tmp_path, rtstyle_home,
                                                                  one_torch_thread):
    """`preserve_color` and `photoreal` give what `--preserve-color` and `--photoreal` give
    (`stylize_rgb` with the same options), and each changes the picture."""
    from rtstyle.models.loading import load_stylizer
    from rtstyle.realtime.finishing import make_finish
    from rtstyle.stills import stylize_rgb

    photo = image_bytes(fmt="PNG")
    rgb = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    options = {"plain": ({}, {}),
               "kept": ({"preserve_color": "luminance"}, {"preserve_color": "luminance"}),
               "real": ({"photoreal": "true"}, {"finish": make_finish(
                   photoreal=True, device=torch.device("cpu"))})}
    with serving(tmp_path) as (client, _):
        got = {k: stylize(client, photo, style="monet", **fields)
               for k, (fields, _) in options.items()}
        bad_color = stylize(client, photo, style="monet", preserve_color="sepia")
        bad_flag = stylize(client, photo, style="monet", photoreal="maybe")
    stylizer = load_stylizer("monet", device="cpu")  # a bundled, trained net: real colours
    pictures = {}
    for key, (_, library) in options.items():
        assert got[key].status_code == 200, got[key].text
        pictures[key] = np.asarray(Image.open(io.BytesIO(got[key].content))).astype(int)
        want = stylize_rgb(stylizer, rgb, torch.device("cpu"), **library).astype(int)
        assert np.abs(pictures[key] - want).max() <= 1, key
    assert np.abs(pictures["kept"] - pictures["plain"]).mean() > 5
    assert np.abs(pictures["real"] - pictures["plain"]).mean() > 5
    assert bad_color.status_code == 400 and "preserve_color" in bad_color.json()["detail"]
    assert bad_flag.status_code == 400 and "photoreal" in bad_flag.json()["detail"]


def test_strength_zero_gives_back_the_input(tmp_path, tiny_styles):
    photo = image_bytes(fmt="PNG")
    with serving(tmp_path) as (client, _):
        same = stylize(client, photo, strength=0)
        full = stylize(client, photo, strength=1)
    original = np.asarray(Image.open(io.BytesIO(photo)))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(same.content))), original)
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(full.content))), original)


def test_a_style_files_default_strength_applies_when_the_request_gives_none(
        tmp_path, rtstyle_home, no_bundled, one_torch_thread):
    from rtstyle.models.weights import read_spec, read_tensors, write_style_file

    made = make_tiny_style(tmp_path / "soft.v1.safetensors", name="soft")
    write_style_file(rtstyle_home / "styles" / "soft.v1.safetensors", read_tensors(made),
                     {**read_spec(made), "default_strength": 0.5, "video_style_scale": 0.5},
                     dtype=None)
    photo = image_bytes(fmt="PNG")
    with serving(tmp_path) as (client, _):
        listed = {s["name"]: s for s in client.get("/api/styles").json()["styles"]}
        assert listed["soft"]["default_strength"] == 0.5
        assert listed["soft"]["video_style_scale"] == 0.5
        plain, half, full, unscaled, scaled = (
            stylize(client, photo, style="soft", **extra).content
            for extra in ({}, {"strength": 0.5}, {"strength": 1},
                          {"strength": 0.5, "style_scale": "1"},
                          {"strength": 0.5, "style_scale": "0.5"}))
    assert plain == half and plain != full
    # the video recommendation leaves stills alone
    assert plain == unscaled and plain != scaled


def test_bad_stills_get_a_clear_4xx_and_nothing_is_kept(tmp_path, tiny_styles):
    clip = write_clip(tmp_path / "clip.mp4", frames=3)
    with serving(tmp_path) as (client, state):
        cases = [
            (stylize(client, image_bytes(), style="nope"), 400, "unknown style 'nope'"),
            (stylize(client, image_bytes(), style=""), 400, "choose a style"),
            (stylize(client, image_bytes(), strength=2), 400, "strength must be"),
            (stylize(client, image_bytes(), strength="nan"), 400, "must be a number"),
            (stylize(client, image_bytes(), size="huge"), 400, "--size must look like"),
            (stylize(client, b"just some text\n" * 40, name="notes.jpg"), 415, "not an image"),
            (stylize(client, clip.read_bytes(), name="clip.mp4"), 415, "videos go to /api/jobs"),
            (stylize(client, image_bytes(), format="gif"), 400, "format must be"),
            (client.post("/api/stylize", data={"style": "tiny"},
                         files={"other": ("x.jpg", image_bytes())}), 400, "unexpected file field"),
            (client.post("/api/stylize", content=image_bytes(),
                         headers={"content-type": "image/jpeg"}), 415, "multipart/form-data"),
            (client.post("/api/stylize", data={"style": "tiny"}), 415, "multipart/form-data"),
        ]
        for response, status, words in cases:
            assert response.status_code == status, response.text
            assert words in response.json()["detail"]
        assert leftovers(state) == []


def test_upload_size_limit_is_413_declared_or_streamed(tmp_path, tiny_styles):
    big = image_bytes(w=400, h=300, fmt="PNG")
    assert len(big) > 20_000
    with serving(tmp_path, max_upload_bytes=20_000) as (client, state):
        declared = stylize(client, big)
        assert declared.status_code == 413 and "--max-upload-mb" in declared.json()["detail"]

        def chunks():  # no Content-Length: the limit must bite while reading
            boundary = b"--b0undary"
            yield boundary + b'\r\nContent-Disposition: form-data; name="style"\r\n\r\ntiny\r\n'
            yield boundary + b'\r\nContent-Disposition: form-data; name="file"; ' \
                             b'filename="a.png"\r\n\r\n'
            for start in range(0, len(big), 4096):
                yield big[start:start + 4096]
            yield b"\r\n" + boundary + b"--\r\n"

        streamed = client.post("/api/stylize", content=chunks(),
                               headers={"content-type": "multipart/form-data; boundary=b0undary"})
        assert streamed.status_code == 413
        assert stylize(client, image_bytes()).status_code == 200
        assert leftovers(state) == []


def test_pixel_limit_applies_to_input_and_result(tmp_path, tiny_styles):
    with serving(tmp_path, max_pixels=3000) as (client, _):
        assert stylize(client, image_bytes(67, 41)).status_code == 200
        big = stylize(client, image_bytes(80, 41))
        assert big.status_code == 413
        assert "80x41" in big.json()["detail"] and "--max-pixels" in big.json()["detail"]
        grown = stylize(client, image_bytes(67, 41), scale=2)
        assert grown.status_code == 413 and "the result" in grown.json()["detail"]


def test_one_stylization_at_a_time_on_the_device(tmp_path, tiny_styles):
    """A still waits while anything else (here: the test) holds the device's gate."""
    with serving(tmp_path) as (client, state):
        results = []
        with state.gate:
            worker = threading.Thread(target=lambda: results.append(stylize(client, image_bytes())))
            worker.start()
            worker.join(1.0)
            assert worker.is_alive() and results == []
        worker.join(30)
        assert results[0].status_code == 200


def test_pending_stills_are_bounded(tmp_path, tiny_styles):
    with serving(tmp_path, max_pending_stills=1) as (client, state):
        results = []
        with state.gate:
            worker = threading.Thread(target=lambda: results.append(stylize(client, image_bytes())))
            worker.start()
            deadline = time.monotonic() + 10
            while state.stills.used == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            busy = stylize(client, image_bytes())
            assert busy.status_code == 503 and "try again" in busy.json()["detail"]
            assert busy.headers["retry-after"]
        worker.join(30)
        assert results[0].status_code == 200


# Video jobs -----------------------------------------------------------------------------------

def test_video_job_keeps_every_frame_and_the_audio(tmp_path, tiny_styles, shared_data):
    source = shared_data / "video" / "mdn_his_girl_friday_640x480_6s_audio.mp4"
    with av.open(str(source)) as c:
        frames_in = sum(1 for _ in c.decode(video=0))
        duration_in = c.duration / 1e6
    with serving(tmp_path) as (client, state):
        accepted = submit(client, source, max_side=64, strength=0.8)
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()
        assert job["state"] in ("queued", "running") and accepted.headers["location"].endswith(job["id"])
        status = wait_job(client, job["id"])
        assert status["state"] == "done", status
        assert status["progress"] == 1.0 and status["size"] == [64, 48] and status["has_audio"]
        result = client.get(status["result_url"])
        assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
        assert 'filename="mdn_his_girl_friday_640x480_6s_audio-tiny.mp4"' in \
            result.headers["content-disposition"]
        part = client.get(status["result_url"], headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        out = tmp_path / "out.mp4"
        out.write_bytes(result.content)
        job_files = [p.name for p in leftovers(state)]
        assert job_files == ["result.mp4"], "the upload should go once the job is done"
    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 64, 48)
        assert c.streams.audio, "the audio track was lost"
        assert sum(1 for _ in c.decode(video=0)) == frames_in
        assert abs(c.duration / 1e6 - duration_in) < 0.2


def test_bad_videos_get_a_clear_4xx_and_nothing_is_kept(tmp_path, tiny_styles):
    clip = write_clip(tmp_path / "clip.mp4", frames=12, rate=25)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(image_bytes())
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    with serving(tmp_path, max_video_seconds=0.2) as (client, state):
        long = submit(client, clip)
        assert long.status_code == 413 and "--max-video-seconds" in long.json()["detail"]
        assert submit(client, text).status_code == 415
        still = submit(client, photo)
        assert still.status_code == 415 and "/api/stylize" in still.json()["detail"]
        assert submit(client, clip, style="nope").status_code == 400
        assert leftovers(state) == [] and list((state.root / "jobs").iterdir()) == []
        assert state.jobs._active == 0


def test_job_queue_is_bounded_and_jobs_can_be_cancelled(tmp_path, tiny_styles):
    clip = write_clip(tmp_path / "clip.mp4", frames=6)
    with serving(tmp_path, max_jobs=2) as (client, state):
        with state.gate:  # the worker waits at the warm-up, so jobs pile up
            first = submit(client, clip).json()["id"]
            second = submit(client, clip).json()["id"]
            full = submit(client, clip)
            assert full.status_code == 503 and "--max-jobs" in full.json()["detail"]
            assert full.headers["retry-after"]
            assert client.get(f"/api/jobs/{second}").json()["state"] == "queued"
            early = client.get(f"/api/jobs/{first}/result")
            assert early.status_code == 409 and "the job is" in early.json()["detail"]
            assert client.delete(f"/api/jobs/{second}").status_code == 200
        assert wait_job(client, first)["state"] == "done"
        deadline = time.monotonic() + 10
        while client.get(f"/api/jobs/{second}").status_code != 404:
            assert time.monotonic() < deadline, "the cancelled job stayed"
            time.sleep(0.05)
        assert not (state.root / "jobs" / second).exists()
        assert submit(client, clip).status_code == 202  # places were given back


def test_finished_jobs_expire_with_their_files(tmp_path, tiny_styles):
    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    with serving(tmp_path, job_ttl_s=600, max_kept_jobs=1) as (client, state):
        ids = [submit(client, clip).json()["id"] for _ in range(2)]
        for job_id in ids:
            assert wait_job(client, job_id)["state"] == "done"
        assert state.jobs.sweep() == 1, "only max_kept_jobs finished jobs are kept"
        assert client.get(f"/api/jobs/{ids[0]}").status_code == 404
        assert client.get(f"/api/jobs/{ids[1]}/result").status_code == 200
        assert state.jobs.sweep(now=time.time() + 601) == 1
        gone = client.get(f"/api/jobs/{ids[1]}")
        assert gone.status_code == 404 and "kept for 10 minutes" in gone.json()["detail"]
        assert leftovers(state) == []
        assert client.get("/api/jobs/../../etc").status_code == 404
        assert client.get("/api/jobs/not-a-job-id-at-all").status_code == 404


# Access ---------------------------------------------------------------------------------------

def test_token_by_query_header_or_cookie(tmp_path, tiny_styles):
    with serving(tmp_path, host="0.0.0.0", token="s3cret") as (client, _):
        refused = client.get("/api/styles")
        assert refused.status_code == 401 and "token" in refused.json()["detail"]
        assert refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/styles?token=wrong").status_code == 401
        assert client.get("/api/styles?token=s3cret").status_code == 200
        assert client.get("/api/styles", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/docs").status_code == 401
        assert stylize(client, image_bytes()).status_code == 401
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect(f"{WS}?style=tiny"):
                pass
        assert closed.value.code == 1008

        opened = client.get("/?token=s3cret", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        assert "HttpOnly" in opened.headers["set-cookie"]
        assert "rtstyle_token_8000=s3cret" in opened.headers["set-cookie"]
        assert client.get("/").status_code == 200  # the client kept the cookie
        assert client.get("/api/styles").status_code == 200
        assert stylize(client, image_bytes()).status_code == 200
        with client.websocket_connect(f"{WS}?style=tiny") as ws:
            ws.send_text(json.dumps({"type": "strength", "value": 0.5}))


def test_host_and_origin_checks(tmp_path, tiny_styles):
    with serving(tmp_path) as (client, _):
        rebound = client.get("/api/styles", headers={"host": "attacker.example"})
        assert rebound.status_code == 400
        assert client.get("/api/styles", headers={"host": "localhost:8000"}).status_code == 200
        foreign = client.post(
            "/api/stylize", headers={"origin": "http://attacker.example"},
            files={"file": ("a.jpg", image_bytes())}, data={"style": "tiny"})
        assert foreign.status_code == 403 and "another site" in foreign.json()["detail"]
        own = client.post("/api/stylize", headers={"origin": BASE},
                          files={"file": ("a.jpg", image_bytes())}, data={"style": "tiny"})
        assert own.status_code == 200
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect(f"{WS}?style=tiny",
                                          headers={"origin": "http://attacker.example"}):
                pass
        assert closed.value.code == 1008


# Live -----------------------------------------------------------------------------------------

def smooth_jpeg(w=64, h=48, seed=0) -> bytes:
    """A gradient: JPEG keeps it nearly intact, so painted and sent frames can be compared."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 3 + seed * 20, y * 4, np.full_like(x, 90 + seed)], -1) % 256
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def live_frame(clock_ms: float, w=64, h=48, seed=0) -> bytes:
    return struct.pack("<d", clock_ms) + smooth_jpeg(w, h, seed)


def next_message(ws, kinds=("ready",)) -> dict | bytes:
    """The next painted frame, or the next text message of one of `kinds`."""
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            return message["bytes"]
        payload = json.loads(message["text"])
        if payload["type"] in kinds:
            return payload
        assert payload["type"] != "error", payload  # an error nobody expected


def test_live_paints_frames_and_switches_style_without_reconnecting(tmp_path, tiny_styles):
    with serving(tmp_path) as (client, _):
        with client.websocket_connect(f"{WS}?style=tiny&smooth=0") as ws:
            ws.send_bytes(live_frame(1000.0))
            ready = next_message(ws)
            assert ready["style"] == "tiny.v1" and ready["size"] == [64, 48]
            answer = next_message(ws)
            assert struct.unpack_from("<d", answer)[0] == 1000.0
            assert Image.open(io.BytesIO(answer[8:])).size == (64, 48)

            ws.send_text(json.dumps({"type": "style", "style": "tiny2"}))
            assert next_message(ws, kinds=("style",))["style"] == "tiny2.v1"
            ws.send_text(json.dumps({"type": "strength", "value": 0.0}))
            ws.send_text(json.dumps({"type": "strength", "value": 7}))
            error = next_message(ws, kinds=("error",))
            assert "strength must be" in error["message"] and error["fatal"] is False
            ws.send_bytes(live_frame(1040.0, seed=3))
            frame = next_message(ws)
            assert struct.unpack_from("<d", frame)[0] == 1040.0
            original = np.asarray(Image.open(io.BytesIO(smooth_jpeg(seed=3))), float)
            painted = np.asarray(Image.open(io.BytesIO(frame[8:])), float)
            assert np.abs(painted - original).mean() < 8, "strength 0 should give the camera back"


def test_live_keeps_the_cameras_colours_on_request(tmp_path, rtstyle_home, one_torch_thread):
    """`preserve_color` on the socket is the preview's `c` key: the camera's chroma comes back."""
    from rtstyle.images import image_to_tensor
    from rtstyle.models.color import rgb_to_ycbcr

    def chroma_gap(frame: bytes) -> float:
        sent, got = (rgb_to_ycbcr(image_to_tensor(np.asarray(Image.open(io.BytesIO(data)))))
                     for data in (smooth_jpeg(seed=3), frame[8:]))
        return float((sent[0, 1:] - got[0, 1:]).abs().mean())

    with serving(tmp_path) as (client, _):
        with client.websocket_connect(f"{WS}?style=monet&smooth=0") as ws:
            ws.send_bytes(live_frame(1000.0, seed=3))
            next_message(ws)  # ready
            plain = chroma_gap(next_message(ws))
            ws.send_text(json.dumps({"type": "preserve_color", "value": "sepia"}))
            assert "unknown colour preservation" in next_message(ws, kinds=("error",))["message"]
            ws.send_text(json.dumps({"type": "preserve_color", "value": "luminance"}))
            ws.send_bytes(live_frame(1040.0, seed=3))
            kept = chroma_gap(next_message(ws))
    assert kept < 3 / 255 < plain / 3, (kept, plain)


def test_live_drops_stale_frames_instead_of_queueing(tmp_path, tiny_styles):
    with serving(tmp_path) as (client, state):
        with client.websocket_connect(f"{WS}?style=tiny&smooth=0") as ws:
            ws.send_bytes(live_frame(0.0))
            next_message(ws)
            next_message(ws)
            with state.gate:  # the model is "slow": nothing is painted for a while
                for i in range(1, 21):
                    ws.send_bytes(live_frame(float(i)))
                time.sleep(0.3)
            clocks = []
            while not clocks or clocks[-1] != 20.0:
                clocks.append(struct.unpack_from("<d", next_message(ws))[0])
            assert len(clocks) < 10, f"stale frames were queued: {clocks}"
            assert clocks == sorted(clocks)


def test_live_refusals(tmp_path, tiny_styles):
    with serving(tmp_path, max_live=1, max_pixels=64 * 48) as (client, _):
        with client.websocket_connect(f"{WS}?style=nope") as ws:
            assert "unknown style 'nope'" in ws.receive_json()["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 1008
        with client.websocket_connect(f"{WS}?style=tiny") as ws:
            ws.send_bytes(struct.pack("<d", 1.0) + b"not a jpeg at all")
            assert "not a JPEG" in ws.receive_json()["message"]
        with client.websocket_connect(f"{WS}?style=tiny") as ws:
            ws.send_bytes(live_frame(1.0, w=65))
            assert "pixel limit" in ws.receive_json()["message"]
        with client.websocket_connect(f"{WS}?style=tiny&smooth=0") as first:
            first.send_bytes(live_frame(1.0))
            next_message(first)
            with client.websocket_connect(f"{WS}?style=tiny") as second:
                assert "already running" in second.receive_json()["message"]
                with pytest.raises(WebSocketDisconnect) as closed:
                    second.receive_text()
                assert closed.value.code == 1013


# The command ----------------------------------------------------------------------------------

def test_serve_command_starts_uvicorn_with_a_token_beyond_localhost(monkeypatch, tiny_styles):
    import uvicorn

    from rtstyle.cli import app

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    runner = CliRunner()

    local = runner.invoke(app, ["serve", "--device", "cpu", "--port", "8123"])
    assert local.exit_code == 0, local.output
    assert "http://127.0.0.1:8123/" in local.output and "token" not in local.output
    assert started[-1][1] == {"host": "127.0.0.1", "port": 8123, "log_level": "info"}

    wide = runner.invoke(app, ["serve", "--device", "cpu", "--host", "0.0.0.0"])
    assert wide.exit_code == 0, wide.output
    token = wide.output.split("?token=")[1].split()[0]
    assert len(token) == 48
    assert TestClient(started[-1][0]).get("/api/info").status_code == 401

    chosen = runner.invoke(app, ["serve", "--device", "cpu", "--token", "abc"])
    assert chosen.exit_code == 0 and "?token=abc" in chosen.output

    open_wide = runner.invoke(app, ["serve", "--device", "cpu", "--host", "0.0.0.0", "--no-auth"])
    assert open_wide.exit_code == 0 and "warning" in open_wide.output
    assert "token" not in open_wide.output.replace("--no-auth", "")

    both = runner.invoke(app, ["serve", "--token", "abc", "--no-auth"])
    assert both.exit_code == 2 and "contradict" in both.output
    assert len(started) == 4


def test_any_painting_style_when_a_sanet_model_is_installed(tmp_path, tiny_styles):
    import torch
    import upstream_reference as ref

    from rtstyle.models.loading import import_style

    torch.manual_seed(0)
    torch.save(ref.sanet_decoder.state_dict(), tmp_path / "decoder.pth")
    torch.save(ref.Transform(512).state_dict(), tmp_path / "transformer.pth")
    import_style(tmp_path / "decoder.pth", name="sanet", arch="sanet",
                 transformer=tmp_path / "transformer.pth")
    painting = image_bytes(50, 40, fmt="PNG", seed=5)
    with serving(tmp_path) as (client, state):
        listing = client.get("/api/styles").json()
        assert listing["arbitrary_style"] is True
        assert [s["needs_style_image"] for s in listing["styles"] if s["name"] == "sanet"] == [True]
        without = stylize(client, image_bytes(), style="sanet")
        assert without.status_code == 400 and "style_image" in without.json()["detail"]
        response = client.post("/api/stylize", data={"style": "sanet"}, files={
            "file": ("p.jpg", image_bytes()), "style_image": ("painting.png", painting)})
        assert response.status_code == 200, response.text
        assert Image.open(io.BytesIO(response.content)).size == (67, 41)
        extra = client.post("/api/stylize", data={"style": "tiny"}, files={
            "file": ("p.jpg", image_bytes()), "style_image": ("painting.png", painting)})
        assert extra.status_code == 400 and "does not take a style_image" in extra.json()["detail"]
        with client.websocket_connect(f"{WS}?style=sanet") as ws:
            assert "not the live camera" in ws.receive_json()["message"]
        assert leftovers(state) == []
        clip = write_clip(tmp_path / "clip.mp4", frames=3)
        job = client.post("/api/jobs", data={"style": "sanet", "smooth": "0"}, files={
            "file": ("clip.mp4", clip.read_bytes()), "style_image": ("painting.png", painting)})
        assert job.status_code == 202, job.text
        assert wait_job(client, job.json()["id"])["state"] == "done"
