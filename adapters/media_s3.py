"""Media files in any S3-compatible object store (AWS S3, MinIO, Ceph, R2…), chosen by configuration."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from adapters.media import sniff


class MediaUnavailable(Exception):
    """The object store could not store or return a media file (unreachable, refused, or no such key)."""


class S3MediaStore:
    """Objects under `prefix` in one bucket, addressed path-style so any S3 API works, not only AWS's."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        access_key_id: str,
        secret_access_key: str,
        region: str = "us-east-1",
        prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )

    def inspect(self, content: bytes) -> tuple[str, int, int] | None:
        return sniff(content)

    def put(self, key: str, content: bytes) -> None:
        found = sniff(content)
        mime = found[0] if found else "application/octet-stream"
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=content, ContentType=mime)
        except (BotoCoreError, ClientError) as error:
            raise MediaUnavailable(self._describe("store", key, error)) from error

    def read(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            return bytes(answer["Body"].read())
        except (BotoCoreError, ClientError) as error:
            raise MediaUnavailable(self._describe("read", key, error)) from error

    def object_key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"media key {key!r} leaves the media prefix")
        return self.prefix + key

    def _describe(self, action: str, key: str, error: Exception) -> str:
        where = f"s3://{self.bucket}/{self.prefix}{key}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "unknown")
            return f"could not {action} media file {where}: S3 answered {code}"
        return f"could not {action} media file {where}: {error}"
