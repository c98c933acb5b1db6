"""Offline, deterministic caption videos: Pillow frames encoded to H.264 MP4 by ffmpeg.

`LocalVideoMaker` needs no network or model. The script is split into caption chunks
of about `CHUNK_WORDS` words (ending with a sentence when one ends nearby); each chunk
is shown for `CHUNK_SECONDS` under a placeholder avatar, with a progress bar along the
bottom. The video lasts `CHUNK_SECONDS` per chunk, at least `MIN_SECONDS`; a script
too long for `MAX_SECONDS` is cut into fewer, longer chunks (smaller text) instead, so
all of it is shown. Sizes: 9:16 → 720×1280, 1:1 → 720×720, 16:9 → 1280×720.

Each chunk's still is drawn once and converted once to limited-range BT.601 yuv420p;
the frames (the still plus that frame's progress bar) are piped raw at `FPS` frames a
second into the ffmpeg binary shipped by `imageio-ffmpeg` (or the one given), which
encodes them with libx264 ("ultrafast": a 20 s video takes about a second, and the
Constrained Baseline stream plays anywhere, at 10-20 KiB per second of video) into a
yuv420p `+faststart` MP4 in a temporary directory, then read back.

The backdrop colours are picked by the sha256 of the brief's msgspec JSON encoding,
so the same brief always gives the same frames (and, with this ffmpeg, the same
bytes). `avatar_url` and `voice_id` are neither fetched nor spoken. Captions keep to
the characters the bundled font has (see `adapters.image_local.drawable`). Any ffmpeg
failure (missing binary, non-zero exit, no output, over `timeout_seconds`) raises
`ProviderError("render_failed", retryable=False)` with ffmpeg's last error lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, NamedTuple, cast

import msgspec
from PIL import Image, ImageDraw

from adapters.image_local import RGB, draw_lines, drawable, fit_text, gradient, rgb
from application.ports import MediaFile, ProviderError, VideoAspect, VideoBrief

SIZES: dict[VideoAspect, tuple[int, int]] = {"9:16": (720, 1280), "1:1": (720, 720), "16:9": (1280, 720)}
FPS = 10
CHUNK_WORDS = 6
CHUNK_SECONDS = 2.0
MIN_SECONDS = 3.0
MAX_SECONDS = 20.0
MAX_CHUNKS = int(MAX_SECONDS // CHUNK_SECONDS)
BAR_HEIGHT = 8
_SLACK = 2  # words a chunk may run over to end with its sentence
_SENTENCE_END = re.compile(r"[.!?…]['\")\]]*$")


class Backdrop(NamedTuple):
    top: str
    bottom: str
    accent: str


BACKDROPS = (
    Backdrop("#0f172a", "#1e3a8a", "#38bdf8"),
    Backdrop("#1f2937", "#4c1d95", "#f472b6"),
    Backdrop("#052e16", "#115e59", "#facc15"),
    Backdrop("#3f1d0b", "#9a3412", "#fde68a"),
)


class LocalVideoMaker:
    """`VideoMaker` that renders caption videos offline; see the module docstring."""

    def __init__(self, ffmpeg: str | None = None, *, timeout_seconds: float = 60.0) -> None:
        self._ffmpeg = ffmpeg
        self._timeout = timeout_seconds

    def make(self, brief: VideoBrief) -> MediaFile:
        width, height = SIZES[brief.aspect_ratio]
        seed = int.from_bytes(hashlib.sha256(msgspec.json.encode(brief)).digest(), "big")
        backdrop = BACKDROPS[seed % len(BACKDROPS)]
        captions = chunks(drawable(brief.script))
        seconds = max(MIN_SECONDS, CHUNK_SECONDS * len(captions))
        n_frames = round(seconds * FPS)
        frames = _frames(captions, (width, height), backdrop, n_frames)
        content = self._encode(frames, width, height)
        return MediaFile(content=content, mime="video/mp4", width=width, height=height, duration_seconds=n_frames / FPS)

    def _encode(self, frames: _FrameSource, width: int, height: int) -> bytes:
        with tempfile.TemporaryDirectory(prefix="pressroom-video-") as tmp:
            out, log = Path(tmp) / "out.mp4", Path(tmp) / "ffmpeg.log"
            command = [
                self._ffmpeg or _shipped_ffmpeg(),
                *("-hide_banner", "-loglevel", "error", "-y"),
                *("-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-"),
                *("-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p"),
                *("-colorspace", "smpte170m", "-color_range", "tv"),
                *("-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact"),
                str(out),
            ]
            with log.open("wb") as err:
                try:
                    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
                except OSError as exc:
                    raise ProviderError("render_failed", f"cannot run ffmpeg: {exc}", retryable=False) from exc
                expired = threading.Event()

                def expire() -> None:
                    expired.set()
                    proc.kill()

                watchdog = threading.Timer(self._timeout, expire)
                watchdog.start()  # also frees a write blocked on an ffmpeg that stopped reading
                try:
                    stdin = cast(IO[bytes], proc.stdin)
                    with contextlib.suppress(BrokenPipeError):  # ffmpeg stopped reading: its exit code says why
                        frames.write(stdin)
                    with contextlib.suppress(OSError):
                        stdin.close()
                    code = proc.wait()
                finally:
                    watchdog.cancel()
            if expired.is_set():
                raise ProviderError("render_failed", f"ffmpeg took over {self._timeout:g} s", retryable=False)
            if code != 0 or not out.is_file() or out.stat().st_size == 0:
                detail = log.read_text(errors="replace").strip()[-500:]
                raise ProviderError("render_failed", f"ffmpeg exited with {code}: {detail}", retryable=False)
            return out.read_bytes()


def chunks(script: str) -> list[str]:
    """Caption chunks of about `CHUNK_WORDS` words, ending at a sentence end when one is
    near, and never more than `MAX_CHUNKS` (longer chunks instead)."""
    words = script.split()
    per = max(CHUNK_WORDS, math.ceil(len(words) / MAX_CHUNKS))
    ends = [bool(_SENTENCE_END.search(word)) for word in words]
    out: list[list[str]] = [[]]
    for i, word in enumerate(words):
        out[-1].append(word)
        n = len(out[-1])
        end_soon = any(ends[i + 1 : i + 1 + _SLACK])  # worth running over `per` to finish the sentence
        if (ends[i] and n >= per // 2) or (n >= per and not end_soon) or n >= per + _SLACK:
            out.append([])
    if len(out) - (not out[-1]) > MAX_CHUNKS:  # sentence ends made too many: plain cuts
        out = [words[i : i + per] for i in range(0, len(words), per)]
    return [" ".join(c) for c in out if c] or [""]


class _FrameSource(NamedTuple):
    """Each chunk's still as yuv420p planes, shown for its share of the frames, with the
    progress bar (the planes' last rows) filled in per frame."""

    stills: list[tuple[bytes, bytes, bytes]]
    size: tuple[int, int]
    bar: tuple[int, int, int]  # filled part, in limited-range Y, Cb, Cr
    track: tuple[int, int, int]
    n_frames: int

    def write(self, sink: IO[bytes]) -> None:
        width = self.size[0]
        for f in range(self.n_frames):
            planes = self.stills[f * len(self.stills) // self.n_frames]
            filled = round(width * (f + 1) / self.n_frames)
            for k, plane in enumerate(planes):
                scale = 1 if k == 0 else 2  # chroma planes are half size both ways
                row, done, rows = width // scale, filled // scale, BAR_HEIGHT // scale
                sink.write(memoryview(plane)[: len(plane) - rows * row])
                sink.write((bytes((self.bar[k],)) * done + bytes((self.track[k],)) * (row - done)) * rows)


def _frames(captions: list[str], size: tuple[int, int], backdrop: Backdrop, n_frames: int) -> _FrameSource:
    width, height = size
    accent = rgb(backdrop.accent)
    base = gradient(size, rgb(backdrop.top), rgb(backdrop.bottom)).convert("RGB")
    margin = round(min(size) * 0.06)
    if width > height:  # avatar on the left, captions on the right
        centre, radius = (width * 0.24, height / 2), height * 0.22
        area = (round(width * 0.44), margin, width - margin, height - margin - BAR_HEIGHT)
    else:
        centre, radius = (width / 2, height * (0.28 if height > width else 0.25)), width * (0.2 if height > width else 0.14)
        area = (margin, round(centre[1] + radius * 1.35), width - margin, height - margin - BAR_HEIGHT)
    _avatar(base, centre, radius, accent)

    stills: list[tuple[bytes, bytes, bytes]] = []
    pad = round(min(size) * 0.035)
    box_w, box_h = area[2] - area[0] - 2 * pad, area[3] - area[1] - 2 * pad
    for caption in captions:
        block = fit_text(caption, box_w, box_h, max_size=round(min(size) * 0.075), min_size=18, max_lines=12)
        frame = base.copy()
        draw = ImageDraw.Draw(frame, "RGBA")  # RGBA ink blends into the RGB frame
        top = area[1] + (area[3] - area[1] - block.height) // 2 - pad
        draw.rounded_rectangle((area[0], top, area[2], top + block.height + 2 * pad), radius=pad, fill=(0, 0, 0, 140))
        draw_lines(draw, block, area[0] + pad, top + pad, box_w, "center", (255, 255, 255), bold=True)
        stills.append(_yuv420(frame))
    return _FrameSource(stills, size, _yuv(accent), _yuv((40, 40, 48)), n_frames)


# Pillow's YCbCr is full range (JPEG); H.264 players expect limited range (Y 16-235, C 16-240).
_Y_LUT = [16 + round(v * 219 / 255) for v in range(256)]
_C_LUT = [16 + round(v * 224 / 255) for v in range(256)]


def _yuv420(frame: Image.Image) -> tuple[bytes, bytes, bytes]:
    y, cb, cr = frame.convert("YCbCr").split()
    half = (frame.width // 2, frame.height // 2)
    return (
        y.point(_Y_LUT).tobytes(),
        cb.resize(half, Image.Resampling.BOX).point(_C_LUT).tobytes(),
        cr.resize(half, Image.Resampling.BOX).point(_C_LUT).tobytes(),
    )


def _yuv(colour: RGB) -> tuple[int, int, int]:
    y, cb, cr = (plane[0] for plane in _yuv420(Image.new("RGB", (2, 2), colour)))
    return y, cb, cr


def _avatar(image: Image.Image, centre: tuple[float, float], radius: float, accent: RGB) -> None:
    """A presenter placeholder: a head-and-shoulders silhouette in an accent ring."""
    d = round(radius * 2)
    face = Image.new("RGB", (d, d), (accent[0] // 2, accent[1] // 2, accent[2] // 2))
    draw = ImageDraw.Draw(face)
    draw.ellipse((d * 0.32, d * 0.18, d * 0.68, d * 0.56), fill=(235, 235, 240))
    draw.ellipse((d * 0.12, d * 0.62, d * 0.88, d * 1.3), fill=(235, 235, 240))
    mask = Image.new("L", (d, d), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, d - 1, d - 1), fill=255)
    x, y = round(centre[0] - radius), round(centre[1] - radius)
    image.paste(face, (x, y), mask)
    ring = max(4, round(radius * 0.06))
    ImageDraw.Draw(image).ellipse((x - ring, y - ring, x + d + ring, y + d + ring), outline=accent, width=ring)


def _shipped_ffmpeg() -> str:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise ProviderError("render_failed", f"no ffmpeg binary: {exc}", retryable=False) from exc
