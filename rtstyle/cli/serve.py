"""`rtstyle serve`: the web app (gallery, image and video uploads, live camera) and its API."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from .common import BackendOption, DeviceOption, PrecisionOption, err, user_errors

SERVE_EXTRA = "the web app needs its extra: pip install \"rtstyle[serve]\" (from a clone: " \
              "pip install \".[serve]\")"


def _urls(host: str, port: int, token: str | None) -> list[str]:
    """Where to point a browser; a wildcard address is reachable by this machine's name."""
    query = f"?token={token}" if token else ""
    if host in ("0.0.0.0", "::", ""):
        names = [socket.gethostname(), "127.0.0.1"]
    elif ":" in host and not host.startswith("["):
        names = [f"[{host}]"]
    else:
        names = [host]
    return [f"http://{name}:{port}/{query}" for name in names]


def serve(
    *,
    host: Annotated[str, typer.Option(
        help="Address to listen on. 127.0.0.1 (the default) is this machine only; any other "
             "(0.0.0.0: every network) needs the access token printed at start.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="No access token even beyond this machine: anyone who can reach "
                          "the port can use it. Only on a network you trust.")] = False,
    token: Annotated[str | None, typer.Option(
        envvar="RTSTYLE_TOKEN", show_envvar=True,
        help="This access token instead of a random one; also asked for on 127.0.0.1.")] = None,
    device: DeviceOption = "auto",
    backend: BackendOption = "auto",
    precision: PrecisionOption = "auto",
    max_upload_mb: Annotated[float, typer.Option(
        min=0.01, help="Largest upload (an image or a video), in MB.")] = 200.0,
    max_pixels: Annotated[int, typer.Option(
        min=1, help="Largest image or video frame, width x height (default: 3840x2160).")
    ] = 3840 * 2160,
    max_video_seconds: Annotated[float, typer.Option(
        min=0.1, help="Longest video accepted, in seconds.")] = 120.0,
    max_jobs: Annotated[int, typer.Option(
        min=1, help="Video jobs queued or running at once; more are refused (503).")] = 4,
    max_live: Annotated[int, typer.Option(
        min=1, help="Live camera sessions at once.")] = 2,
    live_max_side: Annotated[int, typer.Option(
        min=16, help="Live frames are painted at most this many pixels on the long side.")
    ] = 640,
    job_ttl_minutes: Annotated[float, typer.Option(
        min=0.1, help="How long a finished video is kept for download.")] = 60.0,
) -> None:
    """Start the web app: a page with the style gallery, image and video uploads and the live
    camera, plus its HTTP API (documented at /docs). Ctrl-C stops it and removes its files."""
    if token is not None and no_auth:
        raise typer.BadParameter("--token and --no-auth contradict each other")
    if token is not None and not token.strip():
        raise typer.BadParameter("--token must not be empty")
    try:
        import uvicorn

        from ..server import ServerConfig, create_app
        from ..server.config import MB, is_loopback, new_token
    except ImportError as exc:
        err.print(f"[bold red]error:[/] {SERVE_EXTRA} ({exc.name} is missing)", highlight=False)
        raise typer.Exit(1) from None

    with user_errors():
        local = is_loopback(host)
        if token is None and not local and not no_auth:
            token = new_token()
        config = ServerConfig(
            host=host, port=port, token=token, device=device, backend=backend,
            precision=precision, max_upload_bytes=int(max_upload_mb * MB), max_pixels=max_pixels,
            max_video_seconds=max_video_seconds, max_jobs=max_jobs, max_live=max_live,
            live_max_side=live_max_side, job_ttl_s=job_ttl_minutes * 60)
        app = create_app(config)
        if no_auth and not local:
            err.print(f"[yellow]warning:[/] --no-auth on {host}: anyone who can reach port "
                      f"{port} can use this server", highlight=False)
        err.print("rtstyle serve: open this in a browser (Ctrl-C stops the server):",
                  highlight=False)
        for url in _urls(host, port, token):
            err.print(f"    {url}", highlight=False, soft_wrap=True)
        uvicorn.run(app, host=host, port=port, log_level="info")
