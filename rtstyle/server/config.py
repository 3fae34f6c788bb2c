"""What a server instance is allowed to do: where it listens, who may use it, how much work
it accepts. One frozen object, built by `rtstyle serve` from its options or by a test."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """`[::1]:8000` -> `[::1]`, `Localhost:8000` -> `localhost`: the Host header less its port."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def new_token() -> str:
    """An access token as Jupyter makes one: 24 random bytes, hex."""
    return secrets.token_hex(24)


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server.

    `token` None means no token is asked for. `rtstyle serve` sets one whenever it listens
    beyond this machine (unless `--no-auth`), or when `--token` is given.

    Limits (each answered with a 4xx/503 that names the option to change):
    `max_upload_bytes` the whole request body, checked while it streams in (413);
    `max_pixels` width×height of an image or of a video frame, in and out (413);
    `max_video_seconds` a video's duration (413); `max_jobs` video jobs queued or running
    (503 beyond); `max_pending_stills` image requests waiting for the device (503 beyond);
    `max_live` live camera sessions at once; `job_ttl_s` how long a finished job's files are
    kept; `max_kept_jobs` finished jobs kept at most (the oldest go first).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    device: str = "auto"
    backend: str = "auto"
    precision: str = "auto"
    max_upload_bytes: int = 200 * MB
    max_pixels: int = 3840 * 2160
    max_video_seconds: float = 120.0
    max_jobs: int = 4
    max_pending_stills: int = 4
    max_live: int = 2
    live_max_side: int = 640
    job_ttl_s: float = 3600.0
    max_kept_jobs: int = 32
    temp_parent: Path | None = None
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)

    @property
    def auth(self) -> bool:
        return self.token is not None

    @property
    def cookie_name(self) -> str:
        """Per port: browsers share cookies between the ports of one host."""
        return f"rtstyle_token_{self.port}"

    def host_allowed(self, host_header: str | None) -> bool:
        """Without a token, a loopback server answers only to loopback Host names, so a web
        page cannot reach it through DNS rebinding. With a token, or listening beyond this
        machine on purpose (`--no-auth`), any Host is accepted."""
        if self.auth or not is_loopback(self.host):
            return True
        if not host_header:
            return False
        name = host_name(host_header)
        return name in LOOPBACK_NAMES or name in self.allowed_hosts

    def limits(self) -> dict:
        """What the page and API clients need to know before they upload."""
        return {"max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels,
                "max_video_seconds": self.max_video_seconds, "max_jobs": self.max_jobs,
                "max_live": self.max_live, "live_max_side": self.live_max_side,
                "job_ttl_s": self.job_ttl_s}
