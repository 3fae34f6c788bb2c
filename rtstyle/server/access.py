"""Who may use the server: one ASGI middleware in front of every route, HTTP and WebSocket.

Three checks, in order:

1. **Host**: a loopback server without a token answers only to loopback Host names, so a
   web page cannot reach it by DNS rebinding (`ServerConfig.host_allowed`).
2. **Origin**: a browser request that changes something (POST, DELETE) or opens the live
   WebSocket must come from the server's own page. Browsers attach `Origin`; scripts like curl
   send none and are not affected. This stops other sites driving the server from a visitor's
   browser (WebSockets ignore the same-origin policy otherwise).
3. **Token** (when the server has one): accepted as `?token=`, `Authorization: Bearer`, or the
   cookie that the page gets. Like Jupyter, the URL printed at start carries the token; opening
   it sets an HttpOnly cookie and redirects to the same page without the token, so it does not
   stay in the address bar or the history.
"""

from __future__ import annotations

import html
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from .config import ServerConfig

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGES = ("/", "/docs", "/redoc")
TOKEN_HELP = ("this server needs its access token: open the URL with ?token=… that "
              "`rtstyle serve` printed, or send the header 'Authorization: Bearer TOKEN'")


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


class AccessGuard:
    def __init__(self, app: ASGIApp, config: ServerConfig):
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self.config.host_allowed(headers.get("host")):
            await self._deny(scope, receive, send, 400,
                             "this server answers only to localhost / 127.0.0.1")
            return
        method = scope.get("method", "GET")
        origin = headers.get("origin")
        checks_origin = scope["type"] == "websocket" or method not in SAFE_METHODS
        if checks_origin and origin is not None and not self._own_origin(origin, headers):
            await self._deny(scope, receive, send, 403,
                             f"requests from another site ({origin}) are refused")
            return
        if self.config.auth:
            source = self._token_source(scope, headers)
            if source is None:
                await self._deny(scope, receive, send, 401, TOKEN_HELP)
                return
            if source == "query" and scope["type"] == "http" and method == "GET" \
                    and scope["path"] in PAGES:
                await self._redirect_with_cookie(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _own_origin(origin: str, headers: Headers) -> bool:
        return urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower()

    def _token_source(self, scope: Scope, headers: Headers) -> str | None:
        """Where a valid token came from (`query`, `header`, `cookie`), or None."""
        token = self.config.token
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query and _same(query["token"], token):
            return "query"
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(value.strip(), token):
            return "header"
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.config.cookie_name and _same(value, token):
                return "cookie"
        return None

    async def _redirect_with_cookie(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
                 if k != "token"]
        target = scope["path"] + (f"?{urlencode(query)}" if query else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(self.config.cookie_name, self.config.token, httponly=True,
                            samesite="strict", path="/")
        await response(scope, receive, send)

    async def _deny(self, scope: Scope, receive: Receive, send: Send, status: int,
                    message: str) -> None:
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).close(code=1008, reason=message[:120])
            return
        response: Response
        if scope["path"] in PAGES and "text/html" in Headers(scope=scope).get("accept", ""):
            response = HTMLResponse(
                f"<!doctype html><title>rtstyle</title><p>{html.escape(message)}.</p>", status_code=status)
        else:
            response = JSONResponse({"detail": message}, status_code=status)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        await response(scope, receive, send)
