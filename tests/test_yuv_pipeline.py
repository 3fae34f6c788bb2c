"""8-bit 4:2:0 input goes to the encoder as YUV planes converted on the device, keeping colour.

An identity run (`--strength 0`, lossless `--crf 0`) must give back the input's pictures and its
colour tags; a BT.709 clip decoded or re-encoded as BT.601 would be off by up to ~20 levels.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rtstyle.cli import app
from rtstyle.realtime.frames import Colorimetry, Yuv420
from rtstyle.realtime.pipeline import Pipeline
from rtstyle.realtime.runs import Geometry
from rtstyle.realtime.sinks import FileSink
from rtstyle.realtime.sources import FileSource
from rtstyle.realtime.yuv import rgb_to_yuv420, tag, yuv420_to_av_frame

BT709 = Colorimetry("bt709", False, colorspace=1, primaries=1, trc=1)
BT601 = Colorimetry("bt601", False, colorspace=6, primaries=6, trc=6)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_tagged_clip(path: Path, colorimetry: Colorimetry, *, width: int = 96, height: int = 64,
                      frames: int = 4) -> Path:
    """Colour bars over a gradient, encoded losslessly with the given tags."""
    y, x = np.mgrid[0:height, 0:width]
    bars = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
                     [255, 0, 255], [255, 0, 0], [0, 0, 255], [0, 0, 0]], np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"crf": "0"}
        tag(stream.codec_context, colorimetry)
        for i in range(frames):
            rgb = bars[(x * 8 // width + i) % 8] * (0.25 + 0.75 * y[..., None] / height)
            x01 = torch.from_numpy(rgb / 255.0).permute(2, 0, 1)[None].float()
            planes = [p[0].numpy() for p in rgb_to_yuv420(x01, matrix=colorimetry.matrix,
                                                          full_range=colorimetry.full_range)]
            frame = yuv420_to_av_frame(Yuv420(*planes, colorimetry))
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def decoded(path: Path) -> tuple[av.VideoCodecContext, list[av.VideoFrame]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        ctx = container.streams.video[0].codec_context
        return (ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc), frames


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    from rtstyle.realtime.yuv import frame_yuv420_planes

    return [p.astype(int) for p in frame_yuv420_planes(frame)]


def identity_run(src, target):
    """The run's data path with an identity model: the sink's format decides the source's."""
    with FileSource(str(src)) as source:
        source.set_output_size(*Geometry().frame_size(source.info))
        with FileSink(target, source.info, width=source.output_size[0],
                      height=source.output_size[1], crf=0) as sink:
            Pipeline(source, lambda x: x, sink, device=torch.device("cpu")).run()
    return source


def test_an_rgb_sink_gets_rgb_frames_from_a_yuv_source(tmp_path):
    """Format is negotiated once: a sink that accepts RGB never sees planes."""
    from rtstyle.realtime.frames import RGB

    class RgbSink:
        accepts = RGB

        def __init__(self):
            self.frames = []

        def write(self, frame):
            self.frames.append(frame)

        def end_of_input(self):
            pass

    src = write_tagged_clip(tmp_path / "in.mp4", BT709, frames=2)
    sink = RgbSink()
    with FileSource(str(src)) as source:
        Pipeline(source, lambda x: x, sink, device=torch.device("cpu")).run()
    assert source.frames_as_yuv == 0
    assert all(f.yuv is None and f.rgb.shape == (64, 96, 3) for f in sink.frames)


@pytest.mark.parametrize("colorimetry", [BT709, BT601], ids=["bt709", "bt601"])
def test_identity_run_keeps_tags_and_pixels(tiny_style_file, tmp_path, colorimetry):
    src = write_tagged_clip(tmp_path / "in.mp4", colorimetry)
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(app, ["video", str(src), str(out), "--style", str(tiny_style_file),
                                      "--strength", "0", "--crf", "0", "--no-smooth",
                                      "--backend", "eager", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    tags_in, frames_in = decoded(src)
    tags_out, frames_out = decoded(out)
    assert tags_out == tags_in == (colorimetry.colorspace, 1, colorimetry.primaries,
                                   colorimetry.trc)
    assert len(frames_out) == len(frames_in)
    for a, b in zip(frames_in, frames_out, strict=True):
        for pa, pb in zip(planes(a), planes(b), strict=True):
            assert np.abs(pa - pb).max() <= 1  # float round trip on the device, then rounding
        rgb_a, rgb_b = a.to_ndarray(format="rgb24"), b.to_ndarray(format="rgb24")
        assert np.abs(rgb_a.astype(int) - rgb_b).max() <= 3


def test_yuv420p_input_takes_the_device_yuv_path(tmp_path):
    src = write_tagged_clip(tmp_path / "in.mp4", BT709, frames=3)
    source = identity_run(src, tmp_path / "out.mp4")
    assert source.frames_as_yuv == 3
    _, frames_in = decoded(src)
    _, frames_out = decoded(tmp_path / "out.mp4")
    assert np.abs(planes(frames_in[0])[0] - planes(frames_out[0])[0]).max() <= 1


def test_rgb_consumers_still_get_rgb(tmp_path):
    src = write_tagged_clip(tmp_path / "in.mp4", BT709, frames=1)
    with FileSource(str(src)) as source:
        import threading

        frame = next(source.frames(threading.Event()))
    assert frame.yuv is None and frame.rgb.shape == (64, 96, 3)


def test_odd_size_is_cropped_by_one_pixel_not_resampled(tmp_path, caplog):
    src = tmp_path / "odd.mkv"
    with av.open(str(src), "w") as out:  # FFV1 stores the odd 67×41 4:2:0 picture exactly
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 67, 41, "yuv420p"
        rng = np.random.default_rng(0)
        frame = av.VideoFrame(67, 41, "yuv420p")
        luma, *chroma = frame.planes  # grey noise: in gamut, so RGB clamping changes nothing
        luma.update(rng.integers(16, 235, luma.buffer_size, dtype=np.uint8).tobytes())
        for plane in chroma:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    source = identity_run(src, tmp_path / "out.mp4")
    assert source.output_size == (66, 40)
    assert "cropped" in caplog.text
    assert source.frames_as_yuv == 1
    _, (frame_in,) = decoded(src)
    _, (frame_out,) = decoded(tmp_path / "out.mp4")
    y_in, y_out = planes(frame_in)[0], planes(frame_out)[0]
    assert y_out.shape == (40, 66)
    assert np.abs(y_in[:40, :66] - y_out).max() <= 1


def test_cli_announces_warm_up_and_backend_but_not_with_json(tiny_style_file, tmp_path):
    src = write_tagged_clip(tmp_path / "in.mp4", BT601, frames=2)
    common = ["--style", str(tiny_style_file), "--backend", "eager", "--device", "cpu"]
    shown = CliRunner().invoke(app, ["video", str(src), str(tmp_path / "a.mp4"), *common])
    assert shown.exit_code == 0, shown.output
    assert "warming up eager/fp32 for 96×64" in shown.output
    assert "backend: eager/fp32" in shown.output
    quiet = CliRunner().invoke(app, ["video", str(src), str(tmp_path / "b.mp4"), "--json",
                                     *common])
    assert quiet.exit_code == 0, quiet.output
    assert "warming up" not in quiet.output and "backend:" not in quiet.output
