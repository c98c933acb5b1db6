"""User-visible behaviour of the offline caption-video maker, probed with the shipped ffmpeg."""

from __future__ import annotations

import re
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import imageio_ffmpeg
import pytest

from adapters.video_local import MAX_SECONDS, LocalVideoMaker, chunks
from application.ports import MediaFile, ProviderError, VideoAspect, VideoBrief

SHORT = "Meet the Stride Runner."
MEDIUM = (
    "Meet the Stride Runner. Recycled foam cushioning keeps every stride soft. "
    "Breathable knit keeps your feet cool. Order yours today and run lighter."
)
LONG = " ".join(["Every morning starts with a choice about how you want to feel."] * 30)
maker = LocalVideoMaker()


class Probe:
    def __init__(self, stderr: str) -> None:
        duration = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", stderr)
        video = re.search(r"Video: (\w+).*?, (\d+)x(\d+)", stderr)
        assert duration and video, stderr
        hours, minutes, seconds = duration.groups()
        self.seconds = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        self.codec = video.group(1)
        self.size = (int(video.group(2)), int(video.group(3)))
        self.yuv420p = "yuv420p" in video.group(0)


@cache
def rendered(script: str, aspect: VideoAspect) -> tuple[MediaFile, Probe]:
    """One encode per (script, aspect) for the whole module: each costs real time."""
    media = maker.make(VideoBrief(script=script, aspect_ratio=aspect))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "video.mp4"
        path.write_bytes(media.content)
        probe = subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False
        )
    return media, Probe(probe.stderr)


@pytest.mark.parametrize(("aspect", "size"), [("9:16", (720, 1280)), ("1:1", (720, 720)), ("16:9", (1280, 720))])
def test_each_aspect_ratio_when_rendered_then_h264_mp4_of_that_size_and_reported_duration(aspect: VideoAspect, size: tuple[int, int]):
    media, probe = rendered(SHORT, aspect)

    assert media.mime == "video/mp4"
    assert probe.codec == "h264"
    assert probe.yuv420p
    assert probe.size == (media.width, media.height) == size
    assert media.duration_seconds is not None
    assert media.duration_seconds >= 3
    assert abs(probe.seconds - media.duration_seconds) <= 0.5


def test_longer_script_when_rendered_then_longer_video_up_to_the_cap():
    durations = [rendered(script, "1:1")[1].seconds for script in (SHORT, MEDIUM, LONG)]

    assert 3 <= durations[0] < durations[1] < durations[2]
    assert abs(durations[2] - MAX_SECONDS) <= 0.5
    assert rendered(LONG, "1:1")[0].duration_seconds == MAX_SECONDS


def test_same_brief_when_rendered_twice_then_identical_bytes():
    brief = VideoBrief(script=SHORT, aspect_ratio="1:1", voice_id="female-2")

    assert maker.make(brief).content == maker.make(brief).content


def test_long_script_when_chunked_then_every_word_kept_in_at_most_ten_chunks():
    script = " ".join(f"word{i}." if i % 3 == 0 else f"word{i}" for i in range(400))

    captions = chunks(script)

    assert len(captions) <= MAX_SECONDS / 2
    assert " ".join(captions).split() == script.split()


def test_short_sentences_when_chunked_then_captions_end_at_sentence_ends():
    assert chunks("Run lighter. Go further today. Order yours now and save.") == [
        "Run lighter. Go further today.",
        "Order yours now and save.",
    ]


def test_sentence_ending_just_past_the_chunk_size_when_chunked_then_kept_whole():
    assert chunks("Recycled foam cushioning keeps every stride soft. Breathable knit keeps your feet cool.") == [
        "Recycled foam cushioning keeps every stride soft.",
        "Breathable knit keeps your feet cool.",
    ]


def test_missing_ffmpeg_when_rendered_then_render_failed_not_retryable(tmp_path):
    with pytest.raises(ProviderError) as caught:
        LocalVideoMaker(str(tmp_path / "no-ffmpeg")).make(VideoBrief(script=SHORT))

    assert (caught.value.code, caught.value.retryable) == ("render_failed", False)


def test_ffmpeg_exiting_with_error_when_rendered_then_render_failed_with_its_message(tmp_path):
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n")
    broken.chmod(0o755)

    with pytest.raises(ProviderError) as caught:
        LocalVideoMaker(str(broken)).make(VideoBrief(script=SHORT))

    assert (caught.value.code, caught.value.retryable) == ("render_failed", False)
    assert "Unknown encoder libx264" in caught.value.message


def test_ffmpeg_hanging_when_rendered_then_render_failed_after_the_timeout(tmp_path):
    stuck = tmp_path / "ffmpeg"
    stuck.write_text("#!/bin/sh\nexec sleep 30\n")
    stuck.chmod(0o755)

    with pytest.raises(ProviderError) as caught:
        LocalVideoMaker(str(stuck), timeout_seconds=0.5).make(VideoBrief(script=SHORT))

    assert (caught.value.code, caught.value.retryable) == ("render_failed", False)
    assert "took over 0.5 s" in caught.value.message
