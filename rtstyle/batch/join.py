"""Joining the parts of a long video into one file without encoding anything again.

Each part encoded exactly its own frames, with the source's timestamps, into a NUT file
(FFmpeg's own container, which keeps any time base exactly; MP4 rounds a late start to the
movie's millisecond clock, Matroska to milliseconds). Joining copies the parts' packets in
order into the output container and remuxes the source's audio once, for the whole file, the
way `FileSink` does for a run in one piece (PyAV `examples/basics/remux.py`).

NUT stores presentation times only: the demuxer derives each decode time from the presentation
times of the frames before it, which matches what the encoder wrote for every packet but the
first few of a stream with B-frames (as many as the encoder's reorder delay), where it has no
earlier frames to derive them from. Those are filled in the way x264 makes them. Parts are
written with `avoid_negative_ts` off (`FileSink(exact_timestamps=True)`), so a part that starts
the file keeps its decode times below 0 instead of having every timestamp shifted.
"""

from __future__ import annotations

import contextlib
import logging
from fractions import Fraction
from pathlib import Path

import av

from ..errors import RtstyleError
from ..realtime.sinks import AudioRemuxer, interrupts_deferred, output_colorimetry
from ..realtime.sources import FileSource
from ..realtime.yuv import tag

log = logging.getLogger(__name__)

PART_SUFFIX = ".nut"


def _with_decode_times(packets):
    """The packets of one part, in decode order, each with a decode time (see module doc).

    With a reorder delay of d frames, the demuxer leaves the first d decode times unset and
    gives packet d + k the k-th presentation time. x264 makes the first d the first d
    presentation times less the delay (presentation time d minus time 0). A frame shown k-th
    is coded at most d packets late, so the first 2d + 1 packets hold the first d + 1 shown.
    """
    head, delay = [], None
    for packet in packets:
        if packet.size == 0:
            continue
        if head is None:
            yield packet
            continue
        head.append(packet)
        if delay is None and packet.dts is not None:
            delay = len(head) - 1
        if delay is not None and len(head) > 2 * delay:
            _fill_decode_times(head, delay)
            yield from head
            head = None
    if head:  # a part shorter than that
        _fill_decode_times(head, delay if delay is not None else len(head))
        yield from head


def _fill_decode_times(head: list, delay: int) -> None:
    shown = sorted(p.pts for p in head)[:delay + 1]
    late = shown[-1] - shown[0]
    for n, packet in enumerate(head[:delay]):
        packet.dts = shown[n] - late


def _part_packets(container, template, source: Path):
    """One part's video packets, in decode order, each with a decode time."""
    video = container.streams.video[0]
    if video.codec_context.extradata != template.codec_context.extradata:
        raise RtstyleError(f"the parts of {source.name} were encoded with different settings "
                           f"({Path(container.name).name}); they cannot be joined")
    yield from _with_decode_times(container.demux(video))


def join_parts(parts: list[Path], source: Path, target: Path) -> int:
    """Write `target` (in place; the caller renames it when complete) from the parts' video and
    the source's audio. Returns the number of frames written."""
    probe = FileSource(str(source))
    info = probe.info
    probe.close()
    time_base = info.time_base
    output = av.open(str(target), "w")
    written = 0
    try:
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(av.open(str(parts[0])))
            template = first.streams.video[0]
            stream = output.add_stream_from_template(template)
            stream.time_base = time_base
            if info.rotation:
                stream.set_display_rotation(info.rotation)
            with contextlib.suppress(AttributeError, ValueError):
                tag(stream.codec_context,
                    output_colorimetry(info, template.codec_context.width,
                                       template.codec_context.height))
            audio = AudioRemuxer(source, output) if info.has_audio else None
            last_dts: Fraction | None = None
            for n, path in enumerate(parts):
                with contextlib.nullcontext(first) if n == 0 else av.open(str(path)) as container:
                    for packet in _part_packets(container, template, source):
                        dts = packet.dts * Fraction(packet.time_base)
                        if last_dts is not None and dts <= last_dts:
                            raise RtstyleError(f"{path.name} goes back in time at "
                                               f"{float(dts):.3f} s; it cannot be joined")
                        last_dts = dts
                        if audio is not None:
                            audio.copy_until(float(dts))
                        packet.stream = stream
                        output.mux(packet)
                        written += 1
            if audio is not None:
                audio.copy_until(None)
                audio.close()
    except BaseException as exc:
        with contextlib.suppress(Exception):
            output.close()
        target.unlink(missing_ok=True)
        if isinstance(exc, av.error.FFmpegError):
            raise RtstyleError(f"joining {source.name} failed: {exc}") from exc
        raise
    with interrupts_deferred():
        try:
            output.close()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    return written
