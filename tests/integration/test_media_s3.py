"""Media in an S3-compatible object store: moto's S3 server on loopback, spoken to over real HTTP with boto3."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from adapters.bootstrap import Container
from adapters.copy_local import LocalCopyProvider
from adapters.embedded import free_port
from adapters.generation_worker import GenerationWorker
from adapters.image_local import LocalImageMaker
from adapters.media import sniff
from adapters.media_s3 import MediaUnavailable, S3MediaStore
from adapters.settings import Settings
from adapters.video_local import LocalVideoMaker
from tests.e2e.test_media_over_http import tiny_png

ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"pressroom-{uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def store(endpoint: str, bucket: str, prefix: str = "") -> S3MediaStore:
    return S3MediaStore(bucket, endpoint_url=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region=REGION, prefix=prefix)


def test_put_then_read_round_trips_the_bytes(s3_endpoint: str, bucket: str) -> None:
    media = store(s3_endpoint, bucket)
    png = tiny_png()

    media.put("ws/asset/logo.png", png)

    assert media.read("ws/asset/logo.png") == png
    assert media.inspect(png) == ("image/png", 3, 2)


def test_stored_object_has_the_sniffed_content_type_under_the_prefix(s3_endpoint: str, bucket: str) -> None:
    media = store(s3_endpoint, bucket, prefix="media/")

    media.put("ws/asset/logo.png", tiny_png())

    stored = s3_client(s3_endpoint).get_object(Bucket=bucket, Key="media/ws/asset/logo.png")
    assert stored["ContentType"] == "image/png"


def test_reading_a_missing_key_raises_media_unavailable(s3_endpoint: str, bucket: str) -> None:
    with pytest.raises(MediaUnavailable, match="NoSuchKey"):
        store(s3_endpoint, bucket).read("ws/asset/missing.png")


def test_writing_to_a_missing_bucket_raises_media_unavailable(s3_endpoint: str) -> None:
    with pytest.raises(MediaUnavailable, match="NoSuchBucket"):
        store(s3_endpoint, f"absent-{uuid4().hex[:12]}").put("ws/asset/logo.png", tiny_png())


def test_image_job_stores_its_png_in_the_bucket(make_container: Callable[..., Container], s3_endpoint: str, bucket: str) -> None:
    container = make_container(
        media_store="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=bucket,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
        s3_region=REGION,
    )
    workspace = container.app.create_workspace("Acme")[0]
    job = container.app.request_job(workspace.id, "image", {"prompt": "A brass desk lamp", "count": 1}, outputs=1).job

    GenerationWorker(container.app, LocalCopyProvider(), LocalImageMaker(), LocalVideoMaker(), "w").run(job.id)

    done = container.app.get_job(workspace.id, job.id)
    assert (done.status, done.produced) == ("completed", 1)
    asset = container.app.get_asset(workspace.id, done.assets[0]["id"])
    in_bucket = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=asset.storage_key)["Body"].read()
    assert in_bucket == container.media_store.read(asset.storage_key)
    assert sniff(in_bucket) == ("image/png", asset.width, asset.height) and asset.size == len(in_bucket)


def test_s3_media_store_without_its_bucket_names_the_missing_variable() -> None:
    settings = Settings(database_url="postgresql://unused", media_store="s3", s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY)
    container = Container(settings)

    with pytest.raises(SystemExit, match="PRESSROOM_S3_BUCKET"):
        _ = container.media_store
