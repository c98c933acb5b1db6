"""Offline, deterministic caption videos: Pillow frames encoded to H.264 MP4 by ffmpeg.

`LocalVideoMaker` needs no network or model. The script is split into caption chunks
of about `CHUNK_WORDS` words (closing early at a sentence end); each chunk is shown for
`CHUNK_SECONDS` under a placeholder avatar, with a progress bar along the bottom. The
video lasts `CHUNK_SECONDS` per chunk, at least `MIN_SECONDS`; a script too long for
`MAX_SECONDS` is cut into fewer, longer chunks (smaller text) instead, so all of it
is shown. Sizes: 9:16 → 720×1280, 1:1 → 720×720, 16:9 → 1280×720.

Frames are raw RGB piped at `FPS` frames per second into the ffmpeg binary shipped by
`imageio-ffmpeg` (or the one given), encoded as libx264 yuv420p with `+faststart` into
a temporary file, and read back. The backdrop colours are picked by the sha256 of the
brief's msgspec JSON encoding, so the same brief always gives the same frames.
`avatar_url` and `voice_id` are not fetched or spoken. Any ffmpeg failure (missing
binary, non-zero exit, no output, timeout) raises `ProviderError("render_failed",
retryable=False)`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import subprocess
import tempfile
from pathlib import Path
from typing import IO, NamedTuple, cast

import msgspec
from PIL import Image, ImageDraw

from adapters.image_local import RGB, draw_lines, fit_text, gradient, rgb
from application.ports import MediaFile, ProviderError, VideoAspect, VideoBrief

SIZES: dict[VideoAspect, tuple[int, int]] = {"9:16": (720, 1280), "1:1": (720, 720), "16:9": (1280, 720)}
FPS = 10
CHUNK_WORDS = 6
CHUNK_SECONDS = 2.0
MIN_SECONDS = 3.0
MAX_SECONDS = 20.0
MAX_CHUNKS = int(MAX_SECONDS // CHUNK_SECONDS)
BAR_HEIGHT = 8
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
        captions = chunks(brief.script)
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
                *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-"),
                *("-an", "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "23"),
                *("-pix_fmt", "yuv420p", "-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact"),
                str(out),
            ]
            with log.open("wb") as err:
                try:
                    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
                except OSError as exc:
                    raise ProviderError("render_failed", f"cannot run ffmpeg: {exc}", retryable=False) from exc
                stdin = cast(IO[bytes], proc.stdin)
                with contextlib.suppress(BrokenPipeError):  # ffmpeg stopped reading: its exit code says why
                    frames.write(stdin)
                with contextlib.suppress(OSError):
                    stdin.close()
                try:
                    code = proc.wait(timeout=self._timeout)
                except subprocess.TimeoutExpired as exc:
                    proc.kill()
                    proc.wait()
                    raise ProviderError("render_failed", f"ffmpeg took over {self._timeout:g} s", retryable=False) from exc
            if code != 0 or not out.is_file() or out.stat().st_size == 0:
                detail = log.read_text(errors="replace").strip()[-500:]
                raise ProviderError("render_failed", f"ffmpeg exited with {code}: {detail}", retryable=False)
            return out.read_bytes()


def chunks(script: str) -> list[str]:
    """Caption chunks of about `CHUNK_WORDS` words, ending early at a sentence end, and
    never more than `MAX_CHUNKS` (longer chunks instead)."""
    words = script.split()
    per = max(CHUNK_WORDS, math.ceil(len(words) / MAX_CHUNKS))
    out: list[list[str]] = [[]]
    for word in words:
        out[-1].append(word)
        if len(out[-1]) >= per or (_SENTENCE_END.search(word) and len(out[-1]) >= per // 2):
            out.append([])
    if len(out) - (not out[-1]) > MAX_CHUNKS:  # sentence ends made too many: plain cuts
        out = [words[i : i + per] for i in range(0, len(words), per)]
    return [" ".join(c) for c in out if c] or [""]


class _FrameSource(NamedTuple):
    """Each chunk's still, shown for its share of the frames, with the progress bar filled in."""

    stills: list[bytes]
    width: int
    accent: RGB
    track: RGB
    n_frames: int

    def write(self, sink: IO[bytes]) -> None:
        row_bytes = self.width * 3
        body = len(self.stills[0]) - BAR_HEIGHT * row_bytes
        accent, track = bytes(self.accent), bytes(self.track)
        for f in range(self.n_frames):
            still = memoryview(self.stills[f * len(self.stills) // self.n_frames])
            filled = round(self.width * (f + 1) / self.n_frames)
            sink.write(still[:body])
            sink.write((accent * filled + track * (self.width - filled)) * BAR_HEIGHT)


def _frames(captions: list[str], size: tuple[int, int], backdrop: Backdrop, n_frames: int) -> _FrameSource:
    width, height = size
    accent = rgb(backdrop.accent)
    base = gradient(size, rgb(backdrop.top), rgb(backdrop.bottom))
    margin = round(min(size) * 0.06)
    if width > height:  # avatar on the left, captions on the right
        centre, radius = (width * 0.24, height / 2), height * 0.22
        area = (round(width * 0.44), margin, width - margin, height - margin - BAR_HEIGHT)
    else:
        centre, radius = (width / 2, height * (0.28 if height > width else 0.25)), width * (0.2 if height > width else 0.14)
        area = (margin, round(centre[1] + radius * 1.35), width - margin, height - margin - BAR_HEIGHT)
    _avatar(base, centre, radius, accent)

    stills: list[bytes] = []
    pad = round(min(size) * 0.035)
    box_w, box_h = area[2] - area[0] - 2 * pad, area[3] - area[1] - 2 * pad
    for caption in captions:
        block = fit_text(caption, box_w, box_h, max_size=round(min(size) * 0.075), min_size=18, max_lines=12)
        frame = base.copy()
        panel = Image.new("RGBA", size, (0, 0, 0, 0))
        top = area[1] + (area[3] - area[1] - block.height) // 2 - pad
        ImageDraw.Draw(panel).rounded_rectangle(
            (area[0], top, area[2], top + block.height + 2 * pad), radius=pad, fill=(0, 0, 0, 140)
        )
        frame.alpha_composite(panel)
        draw_lines(ImageDraw.Draw(frame), block, area[0] + pad, top + pad, box_w, "center", (255, 255, 255), bold=True)
        stills.append(frame.convert("RGB").tobytes())
    return _FrameSource(stills, width, accent, (40, 40, 48), n_frames)


def _avatar(image: Image.Image, centre: tuple[float, float], radius: float, accent: RGB) -> None:
    """A presenter placeholder: a head-and-shoulders silhouette in an accent ring."""
    d = round(radius * 2)
    face = Image.new("RGBA", (d, d), (*accent, 60))
    draw = ImageDraw.Draw(face)
    draw.ellipse((d * 0.32, d * 0.18, d * 0.68, d * 0.56), fill=(235, 235, 240, 255))
    draw.ellipse((d * 0.12, d * 0.62, d * 0.88, d * 1.3), fill=(235, 235, 240, 255))
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
