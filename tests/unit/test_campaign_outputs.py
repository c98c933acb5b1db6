"""What a campaign turns into: posts of a schedule envelope, and a streamed ZIP."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import pytest

from application.campaign_export import export_chunks
from application.campaigns import post_text, schedule_envelope
from domain.campaign import Campaign, CampaignInvalid, job_slots
from domain.schedule import parse_envelope

START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LONG = {"hook": "A lamp for late readers", "body": "Warm brass light. " * 30, "cta": "Shop now", "hashtags": ["#lamp", "#desk"]}


class DictMedia:
    """A media store in a dict: what the export reads."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def put(self, key: str, content: bytes) -> None:
        self.files[key] = content

    def read(self, key: str) -> bytes:
        return self.files[key]

    def inspect(self, content: bytes) -> tuple[str, int, int] | None:
        return None


def approved(images: int = 2) -> Campaign:
    campaign = Campaign.create(
        uuid4(), uuid4(), title="Lamp", product_url=None, description="d", platforms=["x", "linkedin"], tone="bold",
        image_count=1, auto_approve=False,
    )  # fmt: skip
    campaign.start_analysis()
    campaign.record_analysis(title="Lamp", description="Warm.")
    jobs = [{"id": uuid4(), "type": kind, "slot": slot} for kind, slot in job_slots(campaign)]
    campaign.request_generation(jobs)
    campaign.settle_job(jobs[0]["id"], "completed", [LONG, {**LONG, "hook": "Second"}], [])
    campaign.settle_job(jobs[1]["id"], "completed", [{**LONG, "hook": "Linked"}], [])
    assets = [
        {"id": str(uuid4()), "type": "image", "mime": "image/png", "width": 8, "height": 8, "filename": f"image-{i}.png"}
        for i in range(images)
    ]
    campaign.settle_job(jobs[2]["id"], "completed", [], assets)
    campaign.approve()
    return campaign


def test_post_text_keeps_everything_where_it_fits_and_drops_hashtags_then_body_where_it_does_not() -> None:
    assert post_text(LONG, "webhook", 0).endswith("#lamp #desk")
    short = post_text(LONG, "x", 1)
    assert short == "A lamp for late readers\n\nShop now"


def test_post_text_never_exceeds_the_providers_limit() -> None:
    text = post_text({"hook": "word " * 200, "body": "", "cta": "", "hashtags": []}, "x", 0)

    assert len(text) <= 280 and text.endswith("…")


def test_envelope_has_each_accounts_platform_variants_spaced_with_images_in_turn() -> None:
    campaign = approved()

    envelope = schedule_envelope(
        campaign, accounts=["x:lamps", "webhook:hook"], start_at=START, timezone="Europe/Paris", spacing_minutes=30
    )

    posts = envelope["posts"]
    assert [p["account"] for p in posts] == ["x:lamps"] * 2 + ["webhook:hook"] * 3
    assert [p["publishAt"] for p in posts[:3]] == ["2026-05-01T09:00:00+00:00", "2026-05-01T09:30:00+00:00", "2026-05-01T10:00:00+00:00"]
    assert [p["assets"][0] for p in posts] == [campaign.assets[i % 2]["id"] for i in range(5)]
    assert all(p["campaignId"] == str(campaign.id) for p in posts)
    assert envelope["idempotencyKey"] == f"campaign:{campaign.id}:{campaign.approved_hash}"
    parse_envelope(msgspec.json.encode(envelope))  # a valid envelope for publishing


def test_envelope_without_accounts_is_refused() -> None:
    with pytest.raises(CampaignInvalid):
        schedule_envelope(approved(), accounts=[], start_at=START, timezone="UTC", spacing_minutes=0)


def test_export_streams_a_zip_in_several_chunks_whose_files_match_the_manifest() -> None:
    campaign = approved()
    big = bytes(range(256)) * 1024  # 256 KiB: several chunks
    media = DictMedia({f"k{i}": big + bytes([i]) for i in range(2)})
    keys = {a["id"]: f"k{i}" for i, a in enumerate(campaign.assets)}

    chunks = list(export_chunks(campaign, keys, media))

    assert len([c for c in chunks if c]) > 3
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    manifest = json.loads(archive.read("manifest.json"))
    assert sorted(archive.namelist()) == sorted(["manifest.json", *(f["path"] for f in manifest["files"])])
    for listed in manifest["files"]:
        assert hashlib.sha256(archive.read(listed["path"])).hexdigest() == listed["sha256"]
    assert manifest["campaign"]["approvedHash"] == campaign.content_hash
    assert len(manifest["variants"]) == 3
