"""A real uvicorn server in a background thread, on a free localhost port: for the load and
browser tests and the live benchmark, which need real sockets rather than an in-process client.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

START_TIMEOUT_S = 30.0


class BackgroundServer:
    """`with BackgroundServer(app) as server: httpx.get(server.url + "/api/styles")`.

    The socket is bound before the thread starts, so the port is known and taken at once;
    leaving the block runs the app's shutdown (its temp dir is removed) and joins the thread.
    """

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", log_level: str = "warning"):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, 0))
        self.host, self.port = self.socket.getsockname()[:2]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="rtstyle-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:  # uvicorn offers a flag, not an event, for this
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the server did not start (see its log)")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(START_TIMEOUT_S)
        self.socket.close()
