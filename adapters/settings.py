"""Settings: read once from PRESSROOM_* environment variables, never from anywhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from domain.pricing import Pricing


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = 8000
    # Where clients and platforms reach this server (signed media URLs handed to platforms); default http://host:port.
    public_url: str | None = None
    admin_token: str | None = None
    allow_private_urls: bool = False
    secret_key: str | None = None
    log_level: str = "info"
    db_pool_size: int = 20
    # Which of its processes `pressroom up` starts, comma-separated; unset: all of them.
    services: str | None = None
    # Job requests from concurrent clients are saved together, up to this many per transaction; false: one each.
    group_commit: bool = True
    group_commit_max_batch: int = 64
    # Requests waiting for the writer beyond this are answered 503 at once.
    group_commit_max_queue: int = 2048
    # One workspace's requests waiting beyond this are answered 503, while other workspaces' still get in.
    group_commit_max_queue_per_workspace: int = 512
    # Every insert in eventsourcing's own transaction behind its EXCLUSIVE table lock, as the library ships: the
    # one-command-per-transaction baseline of the write-path bench (with group_commit false); never faster.
    event_log_as_shipped: bool = False
    # How long the relay and the campaign pipeline let events gather after being woken, to take them in fewer batches.
    relay_gather_ms: int = 10
    campaigns_gather_ms: int = 50
    job_lease_seconds: float = 120.0
    video_lease_seconds: float = 1800.0
    job_max_attempts: int = 3
    requeue_after_seconds: float = 30.0
    job_deadline_seconds: float = 3600.0
    sweep_interval_seconds: float = 5.0
    kafka_session_timeout_ms: int = 10000
    kafka_heartbeat_interval_ms: int = 3000
    kafka_max_poll_interval_ms: int = 300000
    worker_id: str | None = None
    kafka_namespace: str = "pressroom"
    cost_copy: int = 1
    cost_image: int = 3
    cost_video: int = 40
    plan_free_credits: int = 50
    plan_pro_credits: int = 500
    plan_business_credits: int = 2500
    billing_webhook_secret: str | None = None
    # "<variant id>:<credits>,…": which payment-provider product variant is which credit pack.
    credit_packs: str = "pack-50:50,pack-150:150,pack-500:500"
    # "<variant id>:<plan>,…": which subscription variant is which plan.
    billing_plans: str = "pro:pro,business:business"
    copy_provider: Literal["local", "openai"] = "local"
    image_provider: Literal["local", "openai", "fal"] = "local"
    video_provider: Literal["local", "heygen"] = "local"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    openai_copy_model: str = "gpt-4o-mini"
    openai_image_model: str = "dall-e-3"
    fal_api_key: str | None = None
    fal_queue_url: str = "https://queue.fal.run"
    fal_model: str = "fal-ai/flux/dev"
    heygen_api_key: str | None = None
    heygen_base_url: str = "https://api.heygen.com"
    heygen_avatar_id: str | None = None
    provider_read_timeout_seconds: float = 60.0
    provider_attempts: int = 3
    media_store: Literal["local", "s3"] = "local"
    # Any S3-compatible API (AWS S3, MinIO, Ceph, R2…); no endpoint URL means AWS's own.
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    # Seconds to wait before each retry of a failed webhook delivery; after the last, it is marked failed.
    webhook_retry_seconds: str = "60,300,1800,7200,21600"
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 8
    # Encrypts provider credentials at rest: base64 of 32 bytes; without it, a key is derived from secret_key.
    token_key: str | None = None
    publish_connect_timeout_seconds: float = 5.0
    publish_read_timeout_seconds: float = 20.0
    publish_max_attempts: int = 5
    schedule_interval_seconds: float = 0.25
    bluesky_base_url: str | None = None  # default https://bsky.social
    telegram_base_url: str | None = None  # default https://api.telegram.org
    # A post handed over that no publishing worker has started this long is published by the scheduler itself
    # (a killed worker's Kafka partitions move over only after its session lapses and the group rebalances).
    takeover_after_seconds: float = 2.0
    # A post left in publishing or unknown this long is looked at again (reconciled with the platform, or re-driven).
    reconcile_after_seconds: float = 60.0
    # OAuth apps of the providers that connect through OAuth; the base URLs default to the provider's own.
    # The callback to register with each is <public_url>/oauth/<provider>/callback.
    x_client_id: str | None = None
    x_client_secret: str | None = None  # none: a public client (PKCE only)
    x_auth_base_url: str | None = None  # default https://x.com
    x_api_base_url: str | None = None  # default https://api.x.com
    linkedin_client_id: str | None = None
    linkedin_client_secret: str | None = None
    linkedin_auth_base_url: str | None = None  # default https://www.linkedin.com
    linkedin_api_base_url: str | None = None  # default https://api.linkedin.com

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def webhook_retries(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.webhook_retry_seconds.split(",") if part.strip())

    def pricing(self) -> Pricing:
        return Pricing(
            copy=self.cost_copy,
            image=self.cost_image,
            video=self.cost_video,
            free=self.plan_free_credits,
            pro=self.plan_pro_credits,
            business=self.plan_business_credits,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {
            field: environ[f"PRESSROOM_{field.upper()}"]
            for field in cls.__struct_fields__
            if f"PRESSROOM_{field.upper()}" in environ and environ[f"PRESSROOM_{field.upper()}"] != ""
        }
        return msgspec.convert(values, cls, strict=False, dec_hook=_decode)

    def to_env(self) -> dict[str, str]:
        """The environment that gives a child process these same settings."""
        env: dict[str, str] = {}
        for field in self.__struct_fields__:
            value = getattr(self, field)
            if value is not None:
                env[f"PRESSROOM_{field.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return env


def _decode(kind: type, value: object) -> object:
    """msgspec reads every setting but paths by itself; a TypeError here becomes its validation error."""
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"a {kind.__name__} cannot be read from an environment variable")


def parse_pairs(text: str) -> dict[str, str]:
    """`a:1,b:2` → {"a": "1", "b": "2"}."""
    pairs = (item.split(":", 1) for item in text.split(",") if ":" in item)
    return {key.strip(): value.strip() for key, value in pairs}
