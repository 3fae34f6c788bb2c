"""Live camera through `rtstyle serve` on localhost: frames per second and round-trip latency.

Starts the real server (uvicorn, in this process) and drives `/api/live` the way the page
does: a 30 fps camera, JPEG frames with the sender's clock, at most two frames in flight,
frames dropped by the server when the model is slower. Two clients:

- `python`: frames of a real clip (640x480, JPEG-encoded beforehand, so the client costs
  little CPU), over the `websockets` client;
- `browser`: the page itself in headless Chromium with its fake camera (640x480), read from
  the page's own fps / round-trip display (needs playwright and a system Chromium).

Writes JSON with the CPU model and SIMD flags from /proc/cpuinfo and the library versions.

    python benchmarks/serve_live.py --style monet --seconds 20
    python benchmarks/serve_live.py --client python --backend eager --smooth 0
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import struct
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rtstyle.realtime.benchmark import library_versions, machine_info  # noqa: E402
from rtstyle.server import ServerConfig, create_app  # noqa: E402
from rtstyle.server.background import BackgroundServer  # noqa: E402

HEADER = struct.Struct("<d")
CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / \
    "mdn_his_girl_friday_640x480_6s_audio.mp4"
SIMD = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
        "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")
MAX_IN_FLIGHT = 2
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream"]


def cpu_details() -> dict:
    """Family/model/stepping (a bare "AMD EPYC" names no generation) and the SIMD flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
        if not line.strip():
            break
    flags = fields.get("flags", "").split()
    return {"cpu_family": fields.get("cpu family"), "cpu_model": fields.get("model"),
            "cpu_stepping": fields.get("stepping"),
            "cpu_flags": [f for f in SIMD if f in flags]}


def versions() -> dict:
    found = library_versions()
    for name in ("fastapi", "starlette", "uvicorn", "websockets", "playwright"):
        try:
            from importlib.metadata import version
            found[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed: not reported
            pass
    return found


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def clip_jpegs(path: Path, count: int = 90) -> list[bytes]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            buffer = io.BytesIO()
            Image.fromarray(frame.to_ndarray(format="rgb24")).save(buffer, "JPEG", quality=80)
            frames.append(buffer.getvalue())
            if len(frames) == count:
                break
    return frames


def run_python_client(url: str, style: str, seconds: float, fps: float,
                      smooth: float | None) -> dict:
    from websockets.sync.client import connect

    jpegs = clip_jpegs(CLIP)
    query = f"style={style}" + ("" if smooth is None else f"&smooth={smooth}")
    sent: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()
    counts = {"sent": 0, "at_start": 0}

    def camera(ws) -> None:
        """A 30 fps camera: each tick, send the newest picture unless two are in flight."""
        tick, i = 1.0 / fps, 0
        next_at = time.perf_counter()
        while not stop.is_set():
            next_at += tick
            with lock:
                busy = len(sent) >= MAX_IN_FLIGHT
            if not busy:
                clock = time.perf_counter() * 1000
                with lock:
                    sent.append(clock)
                ws.send(HEADER.pack(clock) + jpegs[i % len(jpegs)])
                counts["sent"] += 1
            i += 1
            stop.wait(max(0.0, next_at - time.perf_counter()))

    ready, stats, rtts, arrivals = None, None, [], []
    measuring_from = None
    with connect(f"{url.replace('http', 'ws')}/api/live?{query}", max_size=None) as ws:
        sender = threading.Thread(target=camera, args=(ws,), daemon=True)
        sender.start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            message = ws.recv(timeout=120)
            now = time.perf_counter() * 1000
            if isinstance(message, str):
                payload = json.loads(message)
                if payload["type"] == "ready":
                    ready = payload
                elif payload["type"] == "stats":
                    stats = payload
                elif payload["type"] == "error":
                    raise RuntimeError(payload["message"])
                continue
            (clock,) = HEADER.unpack_from(message)
            with lock:
                sent[:] = [t for t in sent if t > clock]
            if measuring_from is None:  # the first second after warm-up is left out
                measuring_from = now + 1000
            if now >= measuring_from:
                if not arrivals:
                    counts["at_start"] = counts["sent"]
                rtts.append(now - clock)
                arrivals.append(now)
                if now - measuring_from >= seconds * 1000:
                    break
        stop.set()
        sender.join()
    span_s = (arrivals[-1] - arrivals[0]) / 1000 if len(arrivals) > 1 else 0
    return {"client": "python", "ready": ready, "frames_back": len(arrivals),
            "frames_sent": counts["sent"] - counts["at_start"], "seconds": round(span_s, 2),
            "fps": round((len(arrivals) - 1) / span_s, 2) if span_s else None,
            "rtt_ms_p50": percentile(rtts, 50), "rtt_ms_p90": percentile(rtts, 90),
            "rtt_ms_p99": percentile(rtts, 99),
            "server_ms_p50_last": stats and stats.get("server_ms"),
            "server_dropped": stats and stats.get("dropped")}


def run_browser_client(url: str, style: str, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector(".card")
        page.click("#tab-live")
        page.click(f'.card[data-style="{style}"]')
        page.click("#live-start")
        page.wait_for_function(
            "() => Number(document.getElementById('live-output').dataset.frames) >= 10",
            timeout=600_000)
        time.sleep(2)
        start_frames = int(page.get_attribute("#live-output", "data-frames"))
        started = time.perf_counter()
        fps, rtt = [], []
        while time.perf_counter() - started < seconds:
            time.sleep(1.0)
            fps.append(float(page.get_attribute("#live-stats", "data-fps")))
            rtt.append(float(page.get_attribute("#live-stats", "data-rtt-ms")))
        frames = int(page.get_attribute("#live-output", "data-frames")) - start_frames
        elapsed = time.perf_counter() - started
        message = page.text_content("#live-message")
        stats = page.text_content("#live-stats")
        version = browser.version
        browser.close()
    return {"client": f"browser (Chromium {version}, fake camera 640x480)",
            "frames_back": frames, "seconds": round(elapsed, 2),
            "fps": round(frames / elapsed, 2), "page_fps_median": percentile(fps, 50),
            "rtt_ms_p50_of_page_medians": percentile(rtt, 50), "page_status": message,
            "page_stats": stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default="monet")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=float, default=30.0, help="The python client's camera rate.")
    ap.add_argument("--client", choices=("python", "browser", "both"), default="both")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--live-max-side", type=int, default=640)
    ap.add_argument("--smooth", type=float, default=None,
                    help="Temporal smoothing for the python client (default: the server's).")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).parent / "results" / "serve_live_cpu.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = ServerConfig(device=args.device, backend=args.backend,
                          live_max_side=args.live_max_side)
    results = []
    load_before = os.getloadavg()
    with BackgroundServer(create_app(config)) as server:
        if args.client in ("python", "both"):
            results.append(run_python_client(server.url, args.style, args.seconds, args.fps,
                                             args.smooth))
            print(json.dumps(results[-1]), flush=True)
        if args.client in ("browser", "both"):
            name = args.style
            from rtstyle.models.registry import discover
            name = discover().get(name).name  # the gallery is keyed by the style's own name
            results.append(run_browser_client(server.url, name, args.seconds))
            print(json.dumps(results[-1]), flush=True)
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine_info() | cpu_details() | {"torch_threads": torch.get_num_threads()},
        "versions": versions(),
        "settings": {"style": args.style, "device": args.device, "backend": args.backend,
                     "live_max_side": args.live_max_side, "smooth": "default (0.7, auto)" if args.smooth is None else args.smooth,
                     "camera": "640x480", "max_in_flight": MAX_IN_FLIGHT},
        "note": "client and server share this machine's cores; the load average says how "
                "busy it was with other work",
        "load_average_1_5_15": {"before": [round(x, 2) for x in load_before],
                                "after": [round(x, 2) for x in os.getloadavg()]},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
