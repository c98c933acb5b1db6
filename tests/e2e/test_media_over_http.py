"""Image and video jobs, assets, uploads, signed media URLs and the progress stream, over HTTP."""

from __future__ import annotations

import base64
import struct
import zlib

import httpx
import msgspec

from adapters.media import sniff
from tests.conftest import System, wait_for

IMAGE_JOB = {"type": "image", "input": {"prompt": "A brass desk lamp on walnut", "aspectRatio": "16:9", "count": 2, "headline": "Light"}}
VIDEO_JOB = {
    "type": "video",
    "input": {"script": "Meet the lamp that follows your day. Warm at night, bright at noon.", "aspectRatio": "1:1"},
}


def finished(client: httpx.Client, job_id: str) -> dict:
    return wait_for(lambda: (j := client.get(f"/v1/jobs/{job_id}").json())["status"] not in ("queued", "processing") and j, timeout=60)  # type: ignore[return-value]


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_image_job_completes_with_assets_whose_signed_urls_serve_the_pngs_without_a_key(system: System) -> None:
    client = system.workspace()

    accepted = client.post("/v1/jobs", json=IMAGE_JOB).json()
    job = finished(client, accepted["jobId"])

    assert accepted["creditsReserved"] == 6
    assert (job["status"], job["progress"], job["creditsConsumed"]) == ("completed", {"done": 2, "total": 2}, 6)
    assert len(job["result"]["assets"]) == 2 and "variants" not in job["result"]
    for ref in job["result"]["assets"]:
        served = httpx.get(system.base_url + ref["url"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert sniff(served.content) == ("image/png", 1920, 1080) == ("image/png", ref["width"], ref["height"])
        asset = client.get(f"/v1/assets/{ref['id']}").json()
        assert (asset["jobId"], asset["type"], asset["bytes"]) == (job["id"], "image", len(served.content))


def test_media_url_with_a_wrong_token_is_404(system: System) -> None:
    client = system.workspace()
    job = finished(client, client.post("/v1/jobs", json=IMAGE_JOB).json()["jobId"])
    url = job["result"]["assets"][0]["url"]
    asset_id, token, filename = url.split("/")[2:]

    forged = httpx.get(f"{system.base_url}/media/{asset_id}/{'0' * len(token)}/{filename}")

    assert forged.status_code == 404


def test_video_job_completes_with_a_playable_mp4(system: System) -> None:
    client = system.workspace()

    job = finished(client, client.post("/v1/jobs", json=VIDEO_JOB).json()["jobId"])

    assert (job["status"], job["creditsReserved"]) == ("completed", 40)
    (ref,) = job["result"]["assets"]
    served = httpx.get(system.base_url + ref["url"])
    assert served.headers["content-type"] == "video/mp4" and served.content[4:8] == b"ftyp"
    assert (ref["type"], ref["width"], ref["height"]) == ("video", 720, 720)


def test_event_stream_reports_progress_and_ends_with_the_terminal_status(system: System) -> None:
    client = system.workspace()
    job_id = client.post("/v1/jobs", json=IMAGE_JOB).json()["jobId"]

    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=60) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        messages = [msgspec.json.decode(line[len("data: ") :]) for line in stream.iter_lines() if line.startswith("data: ")]

    assert messages[-1] == {"status": "completed", "progress": {"done": 2, "total": 2}}
    assert [m["progress"]["done"] for m in messages] == sorted(m["progress"]["done"] for m in messages)


def test_canceling_a_terminal_job_is_409_and_refunds_nothing(system: System) -> None:
    client = system.workspace()
    job = finished(client, client.post("/v1/jobs", json=IMAGE_JOB).json()["jobId"])

    answer = client.post(f"/v1/jobs/{job['id']}/cancel")

    assert answer.status_code == 409 and answer.json()["code"] == "invalid_state"
    assert client.get("/v1/credits").json()["balance"] == 44


def test_upload_is_typed_by_its_content_not_its_claimed_mime(system: System) -> None:
    client = system.workspace()
    png = tiny_png()

    answer = client.post(
        "/v1/assets/upload", json={"filename": "logo.jpg", "mime": "image/jpeg", "contentBase64": base64.b64encode(png).decode()}
    )

    assert answer.status_code == 201
    asset = answer.json()
    assert (asset["mime"], asset["type"], asset["width"], asset["height"], asset["bytes"], asset["jobId"]) == (
        "image/png",
        "image",
        3,
        2,
        len(png),
        None,
    )
    assert httpx.get(system.base_url + asset["url"]).content == png


def test_upload_that_is_not_media_is_415_and_bad_base64_is_422(system: System) -> None:
    client = system.workspace()
    text = base64.b64encode(b"#!/bin/sh\necho not an image\n").decode()

    not_media = client.post("/v1/assets/upload", json={"filename": "x.png", "mime": "image/png", "contentBase64": text})
    not_base64 = client.post("/v1/assets/upload", json={"filename": "x.png", "mime": "image/png", "contentBase64": "@@@"})

    assert not_media.status_code == 415 and not_media.json()["code"] == "unsupported_media"
    assert not_base64.status_code == 422 and not_base64.json()["errors"][0]["path"] == "contentBase64"


def test_another_workspaces_asset_is_404(system: System) -> None:
    owner, stranger = system.workspace("Owner"), system.workspace("Stranger")
    png = base64.b64encode(tiny_png()).decode()
    asset_id = owner.post("/v1/assets/upload", json={"filename": "a.png", "mime": "image/png", "contentBase64": png}).json()["id"]

    assert stranger.get(f"/v1/assets/{asset_id}").status_code == 404
