"""`create_app(config)`: the FastAPI application behind `rtstyle serve`.

Routes stay thin: each reads its upload (`uploads`), checks it (`media`, `catalog`), and hands
the work to a library object: `stylize_rgb` for stills, `VideoRun` through the job queue,
`LiveRun` through a live session. Everything the server writes lives in one temp dir of its
own, created at start and removed at shutdown.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..devices import resolve_device
from ..errors import MediaError, RtstyleError, UserInputError
from ..geometry import parse_size, target_size
from ..images import read_image
from ..models.color import check_color_mode
from ..models.style_scale import parse_style_scale, with_style_scale
from ..realtime.finishing import make_finish
from ..realtime.runs import Geometry, StyleSettings
from ..stills import stylize_rgb
from .access import AccessGuard
from .catalog import StyleCatalog, StylizerCache
from .config import ServerConfig
from .gate import DeviceGates
from .jobs import DONE, FAILED, Job, JobQueue
from .live import CLOSE_POLICY, CLOSE_TRY_LATER, LiveSession
from .media import check_pixels, encode_image, output_format, probe_image, probe_video
from .schemas import (
    IMAGE_RESPONSE,
    JOB_BODY,
    STYLIZE_BODY,
    VIDEO_RESPONSE,
    JobStatus,
    ServerInfo,
    StyleList,
    problems,
)
from .uploads import Form, UploadedFile, receive_form

STATIC = Path(__file__).resolve().parent / "static"
FILE_FIELDS = ("file", "style_image")

DESCRIPTION = """
Paint images, videos and a live camera in the manner of the installed styles.

* `GET /api/styles`: the styles to choose from.
* `POST /api/stylize`: an image in (multipart `file`, `style`, optional `strength` and size
  options), the stylized image out, same size and format unless asked otherwise.
* `POST /api/jobs`: a video in, `{"id": ...}` out; poll `GET /api/jobs/{id}` for
  `state` (queued, running, done, failed) and `progress` (0..1), then fetch
  `GET /api/jobs/{id}/result`: H.264 MP4 with every frame, its timing and the audio.
* WebSocket `/api/live?style=NAME`: the live camera. Binary messages both ways are 8 bytes of
  the browser's clock (float64 little-endian, ms) followed by a JPEG; the server answers each
  painted frame with the clock reading of the frame it came from, and drops frames when the
  model is slower than the camera. Text messages `{"type": "style", "style": NAME}` and
  `{"type": "strength", "value": 0.7}` change the style or strength without reconnecting.

**Access**: when the server has a token (always, when it listens beyond this machine, unless
started with `--no-auth`), send it as `?token=`, as `Authorization: Bearer TOKEN`, or let the
page's cookie carry it (opening the URL printed at start sets it).

**Limits**: `GET /api/info` lists them. Over a size, pixel or duration limit: 413; not an image
or video: 415; the queue full: 503 with `Retry-After`.
"""


class Slots:
    """A counter of places (pending stills, live sessions); a full one answers at once."""

    def __init__(self, size: int):
        self.size = size
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.size:
                return False
            self.used += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.used -= 1


@dataclass
class ServerState:
    config: ServerConfig
    device: torch.device
    root: Path
    catalog: StyleCatalog
    gate: threading.Lock
    stylizers: StylizerCache
    jobs: JobQueue
    stills: Slots
    live: Slots

    @property
    def uploads(self) -> Path:
        return self.root / "stills"

    @classmethod
    def open(cls, config: ServerConfig, device: torch.device) -> ServerState:
        root = Path(tempfile.mkdtemp(prefix="rtstyle-serve-", dir=config.temp_parent))
        (root / "stills").mkdir()
        gate = DeviceGates().get(device)
        state = cls(config, device, root, StyleCatalog(), gate, StylizerCache(device),
                    JobQueue(config, root / "jobs", gate), Slots(config.max_pending_stills),
                    Slots(config.max_live))
        state.jobs.start()
        return state

    def close(self) -> None:
        try:
            self.jobs.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _number(fields: dict[str, str], name: str, kind=float, *, low: float | None = None,
            high: float | None = None, low_open: bool = False):
    text = (fields.get(name) or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
        if not math.isfinite(value):
            raise ValueError
    except ValueError:
        raise HTTPException(400, f"{name} must be a number, not '{text[:20]}'") from None
    if (low is not None and (value <= low if low_open else value < low)) or \
            (high is not None and value > high):
        bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high else "")
        raise HTTPException(400, f"{name} must be {bounds}, got {value:g}")
    return value


def _style_options(fields: dict[str, str]) -> tuple[float | None, dict]:
    """(strength or None for the style's default, geometry keywords) from the form, checked."""
    strength = _number(fields, "strength", low=0.0, high=1.0)
    geometry = {"size": parse_size((fields.get("size") or "").strip() or None),
                "scale": _number(fields, "scale", low=0.0, low_open=True),
                "max_side": _number(fields, "max_side", int, low=1)}
    return strength, geometry


def _style_scale(fields: dict[str, str]) -> float | str | None:
    """`style_scale` (a factor in (0, 4], auto or auto:N; `rtstyle.models.style_scale`), checked;
    None when not given (stills: 1; videos: the style's recommendation)."""
    text = (fields.get("style_scale") or "").strip()
    if not text:
        return None
    try:
        return parse_style_scale(text)
    except UserInputError as exc:
        raise HTTPException(400, str(exc).replace("--style-scale", "style_scale")) from None


def _color_options(fields: dict[str, str]) -> tuple[str | None, bool]:
    """(`preserve_color`, `photoreal`) from the form, checked: the page's colour switches,
    the same as `--preserve-color` and `--photoreal`."""
    try:
        color = check_color_mode((fields.get("preserve_color") or "").strip() or None)
    except UserInputError as exc:
        raise HTTPException(400, str(exc).replace("colour preservation", "preserve_color")
                            ) from None
    flag = (fields.get("photoreal") or "").strip().lower()
    if flag not in ("", "0", "1", "true", "false", "on", "off"):
        raise HTTPException(400, f"photoreal must be true or false, got '{flag}'")
    return color, flag in ("1", "true", "on")


def _the_file(form: Form, what: str) -> UploadedFile:
    upload = form.files.get("file")
    if upload is None or upload.size == 0:
        raise HTTPException(400, f"no {what}: send it in a multipart part named 'file'")
    return upload


def _painting(state: ServerState, spec, form: Form) -> Path | None:
    """The uploaded painting for a painting-driven style (checked), else None."""
    upload = form.files.get("style_image")
    if not spec.needs_style_image:
        if upload is not None:
            raise HTTPException(400, f"'{spec.name}' does not take a style_image; only "
                                     "styles with needs_style_image do")
        return None
    if upload is None:
        raise HTTPException(400, f"'{spec.name}' paints in the manner of a painting you send: "
                                 "add it as the part 'style_image'")
    probe_image(upload.path, state.config.max_pixels)
    return upload.path


def _label(filename: str) -> str:
    """A download name from the client's file name: letters, digits, `._-` only."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:60] or "upload"


def _stylize_still(state: ServerState, form: Form) -> Response:
    config = state.config
    upload = _the_file(form, "image")
    spec = state.catalog.resolve(form.fields.get("style"))
    strength, geometry = _style_options(form.fields)
    style_scale = _style_scale(form.fields)
    color, photoreal = _color_options(form.fields)
    probe = probe_image(upload.path, config.max_pixels)
    pil_format, media_type, suffix = output_format(form.fields.get("format"), probe.format)
    painting_path = _painting(state, spec, form)
    painting = read_image(painting_path) if painting_path is not None else None
    rgb = read_image(upload.path)
    form.discard()  # nothing of an upload outlives its decoding
    width, height = target_size(rgb.shape[1], rgb.shape[0], **geometry)
    check_pixels(width, height, config.max_pixels, "the result")
    stylizer = with_style_scale(state.stylizers.get(spec, painting), style_scale)
    with state.gate:
        painted = stylize_rgb(stylizer, rgb, state.device,
                              strength=spec.default_strength if strength is None else strength,
                              preserve_color=color,
                              finish=make_finish(photoreal=photoreal, device=state.device),
                              **geometry)
    name = f"{_label(upload.filename)}-{_label(spec.name)}{suffix}"
    return Response(encode_image(painted, pil_format), media_type=media_type, headers={
        "Content-Disposition": f'inline; filename="{name}"',
        "X-Rtstyle-Style": spec.full_name, "X-Rtstyle-Size": f"{width}x{height}"})


def _prepare_job(state: ServerState, form: Form, job_id: str, folder: Path) -> Job:
    config = state.config
    upload = _the_file(form, "video")
    spec = state.catalog.resolve(form.fields.get("style"))
    strength, geometry = _style_options(form.fields)
    smooth = _number(form.fields, "smooth", low=0.0, high=1.0)
    color, photoreal = _color_options(form.fields)
    probe = probe_video(upload.path, config.max_pixels, config.max_video_seconds)
    width, height = target_size(probe.width, probe.height, **geometry, even=True)
    check_pixels(width, height, config.max_pixels, "the result")
    settings = StyleSettings(
        styles=(spec.full_name,), style_image=_painting(state, spec, form),
        strength=spec.default_strength if strength is None else strength,
        device=config.device, backend=config.backend, precision=config.precision,
        style_scale=_style_scale(form.fields), preserve_color=color, photoreal=photoreal,
        **({} if smooth is None else {"smooth": smooth}))
    return Job(id=job_id, folder=folder, input=upload.path, style=spec.full_name,
               settings=settings, geometry=Geometry(**geometry), probe=probe,
               download_name=f"{_label(upload.filename)}-{_label(spec.name)}.mp4")


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The app for `config`; its temp dir, job worker and caches live from startup to
    shutdown (`with TestClient(app)` or uvicorn's lifespan)."""
    config = config or ServerConfig()
    device = resolve_device(config.device)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.server = ServerState.open(config, device)
        try:
            yield
        finally:
            app.state.server.close()

    app = FastAPI(title="rtstyle", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan)
    app.add_middleware(AccessGuard, config=config)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def server(request: Request | WebSocket) -> ServerState:
        return request.app.state.server

    @app.exception_handler(RtstyleError)
    async def library_error(request: Request, exc: RtstyleError) -> JSONResponse:
        status = 415 if isinstance(exc, MediaError) else 400 \
            if isinstance(exc, UserInputError) else 500
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/info", response_model=ServerInfo, responses=problems(401))
    def info(request: Request) -> dict:
        """Version, device and the limits a client should know before uploading."""
        return {"version": __version__, "device": str(device), "backend": config.backend,
                "auth": config.auth, "limits": config.limits()}

    @app.get("/api/styles", response_model=StyleList, responses=problems(401))
    def styles(request: Request) -> dict:
        """The installed styles, one entry per style (its default tag)."""
        catalog = server(request).catalog
        return {"styles": catalog.listing(), "arbitrary_style": catalog.arbitrary_style}

    @app.get("/api/styles/{name}/image", response_class=FileResponse,
             responses={200: {"content": {"image/jpeg": {}}}, **problems(401, 404)})
    def style_picture(name: str, request: Request) -> FileResponse:
        """The style's gallery picture (photo · painting · output), for bundled styles."""
        picture = server(request).catalog.picture(name)
        if picture is None:
            raise HTTPException(404, f"no picture for style '{name}'")
        return FileResponse(picture, media_type="image/jpeg",
                            headers={"Cache-Control": "max-age=86400"})

    @app.post("/api/stylize", response_class=Response, openapi_extra=STYLIZE_BODY,
              responses={200: IMAGE_RESPONSE, **problems(400, 401, 403, 413, 415, 503)})
    async def stylize(request: Request) -> Response:
        """Stylize one image. The result has the input's size and format (JPEG, PNG and WebP;
        other formats come back as PNG) unless `size`, `scale`, `max_side` or `format` say
        otherwise."""
        state = server(request)
        if not state.stills.take():
            raise HTTPException(503, f"busy: {state.config.max_pending_stills} images are "
                                     "already waiting; try again in a moment",
                                headers={"Retry-After": "2"})
        try:
            form = await receive_form(request, state.uploads, file_fields=FILE_FIELDS,
                                      max_bytes=state.config.max_upload_bytes)
            try:
                return await run_in_threadpool(_stylize_still, state, form)
            finally:
                form.discard()
        finally:
            state.stills.give()

    @app.post("/api/jobs", status_code=202, response_model=JobStatus, openapi_extra=JOB_BODY,
              responses=problems(400, 401, 403, 413, 415, 503))
    async def create_job(request: Request) -> JSONResponse:
        """Queue a video. Answers 202 with the job's status; `id` names it from then on."""
        state = server(request)
        reservation = state.jobs.reserve()
        job_id, folder = state.jobs.new_folder()
        try:
            form = await receive_form(request, folder, file_fields=FILE_FIELDS,
                                      max_bytes=state.config.max_upload_bytes)
            try:
                job = await run_in_threadpool(_prepare_job, state, form, job_id, folder)
            except BaseException:
                form.discard()
                raise
        except BaseException:
            reservation.release()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        state.jobs.submit(job, reservation)
        return JSONResponse(job.status(), status_code=202,
                            headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/jobs/{job_id}", response_model=JobStatus, responses=problems(401, 404))
    def job_status(job_id: str, request: Request) -> dict:
        """State (queued, running, done, failed), progress 0..1, and the error if it failed."""
        return server(request).jobs.get(job_id).status()

    @app.get("/api/jobs/{job_id}/result", response_class=FileResponse,
             responses={200: VIDEO_RESPONSE, **problems(401, 404, 409)})
    def job_result(job_id: str, request: Request) -> FileResponse:
        """The finished video (supports Range requests, so a page can seek in it)."""
        job = server(request).jobs.get(job_id)
        if job.state != DONE:
            why = f": {job.error}" if job.state == FAILED else \
                f" ({job.progress:.0%} done)" if job.progress else ""
            raise HTTPException(409, f"the job is {job.state}{why}")
        return FileResponse(job.output, media_type="video/mp4", filename=job.download_name,
                            content_disposition_type="inline")

    @app.delete("/api/jobs/{job_id}", response_model=JobStatus, responses=problems(401, 404))
    def delete_job(job_id: str, request: Request) -> dict:
        """Cancel a queued or running job, or delete a finished one and its files."""
        return server(request).jobs.remove(job_id).status()

    @app.websocket("/api/live")
    async def live(ws: WebSocket) -> None:
        state = server(ws)
        await ws.accept()
        if not state.live.take():
            await ws.send_json({"type": "error", "message": f"{state.config.max_live} live "
                                "sessions are already running; try again later"})
            await ws.close(code=CLOSE_TRY_LATER)
            return
        try:
            query = dict(ws.query_params)
            try:
                strength = _number(query, "strength", low=0.0, high=1.0)
                session = LiveSession(ws, config=state.config, catalog=state.catalog,
                                      gate=state.gate, style=query.get("style"),
                                      strength=1.0 if strength is None else strength,
                                      smooth=_number(query, "smooth", low=0.0, high=1.0))
            except HTTPException as exc:
                await ws.send_json({"type": "error", "message": exc.detail})
                await ws.close(code=CLOSE_POLICY)
                return
            await session.serve()
        finally:
            state.live.give()

    return app
