"""`rtstyle serve`: the web app and its HTTP API, on top of the same run objects as the CLI.

    config.py   ServerConfig: where to listen, who may connect, how much work to take
    access.py   the access guard (token, Host and Origin checks) as ASGI middleware
    uploads.py  streaming multipart into the server's temp dir, with the size limit applied
                while the bytes arrive
    media.py    probing uploads (image or video, pixel and duration limits), encoding stills
    catalog.py  the installed styles as the page shows them, and a cache of loaded stylizers
    gate.py     one stylization at a time per device: stills, jobs and live frames share it
    jobs.py     the bounded video job queue: one worker, progress, expiry of old results
    live.py     browser frames over a WebSocket through `LiveRun`, and back
    schemas.py  the JSON shapes and multipart bodies, for the OpenAPI document at /docs
    app.py      `create_app(config)`: routes, errors, lifespan
    background.py  a real uvicorn in a thread on a free port (load/browser tests, benchmark)
    static/     the page (plain HTML, JS and CSS; no build step)
"""

from .app import create_app
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
