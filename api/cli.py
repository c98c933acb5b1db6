"""The `pressroom` command line: `up` runs everything on one machine; the other commands run one process each."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from uuid import UUID

import msgspec
import structlog

from adapters.bootstrap import Container
from adapters.embedded import EmbeddedBroker, EmbeddedPostgres
from adapters.heap import freeze_startup_heap
from adapters.logging import configure_logging
from adapters.settings import Settings
from api import operator_cli

log = structlog.get_logger()

SERVICES = ("api", "projections", "relay", "worker", "publisher", "sweeper", "webhooks", "campaigns")
# Every process keeps its own pools and listeners; PostgreSQL's default of 100 is too few for them all.
EMBEDDED_MAX_CONNECTIONS = 500
# MB of WAL segments kept for reuse: a vacuum's burst of WAL then never makes a commit wait while a new segment
# is created and synced (docs/OPERATIONS.md).
EMBEDDED_MIN_WAL_MB = 1024
# Until there are segments to reuse (a new data directory), each new WAL segment was written full of zeros and
# synced while a commit waited for it; without the zeros, creating one costs a write of its last page.
EMBEDDED_WAL_INIT_ZERO = "off"


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _: FrameType | None) -> None:
        # Not stop.set() here: the handler runs in the main thread, which may be inside stop.wait()
        # holding the event's lock, and would deadlock (seen: a second Ctrl-C hung `pressroom up`).
        threading.Thread(target=stop.set, daemon=True).start()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def run_service(kind: str, settings: Settings) -> None:
    configure_logging(settings.log_level, process=kind)
    if kind == "api":
        from api.app import create_app
        from api.http_protocol import serve

        app = create_app(settings)
        freeze_startup_heap()
        serve(app, settings.host, settings.port)
        return
    # Background processes need few connections; the API's pool is sized by PRESSROOM_DB_POOL_SIZE.
    container = Container(msgspec.structs.replace(settings, db_pool_size=min(settings.db_pool_size, 4)))
    freeze_startup_heap()
    runners: dict[str, Callable[[threading.Event], None]] = {
        "projections": container.run_projections,
        "relay": container.run_relay,
        "worker": container.run_generation_worker,
        "sweeper": container.run_sweeper,
        "webhooks": container.run_webhooks,
        "publisher": container.run_publishing_worker,
        "campaigns": container.run_campaigns,
    }
    stop = stop_on_signals()
    try:
        runners[kind](stop)
    finally:
        container.close()


def migrate(settings: Settings) -> None:
    configure_logging(settings.log_level, process="migrate")
    container = Container(settings)
    try:
        container.migrate()
    finally:
        container.close()
    log.info("migrated")


class FirstWorkspace(msgspec.Struct):
    id: UUID


def _kept_secret(configured: str | None, path: Path, size: int) -> str:
    """A configured secret, or one generated into the data directory on the first run and reused after."""
    if configured:
        return configured
    if not path.exists():
        path.write_text(secrets.token_urlsafe(size))
        path.chmod(0o600)
    return path.read_text().strip()


def _first_key(container: Container, data_dir: Path) -> tuple[UUID, str]:
    """The first workspace's id and a fresh key for it: made on the first run, a new key on each later one."""
    record = data_dir / "first_workspace.json"
    if record.exists():
        workspace_id = msgspec.json.decode(record.read_bytes(), type=FirstWorkspace).id
        return workspace_id, container.app.issue_key(workspace_id, "pressroom up").secret
    workspace, new_key = container.app.create_workspace("My workspace", "free", key_label="pressroom up")
    record.write_bytes(msgspec.json.encode(FirstWorkspace(id=workspace.id)))
    return workspace.id, new_key.secret


class Supervisor:
    """Starts each service as a child process and restarts one that dies, until stopped."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, kind: str) -> None:
        # Own sessions: a terminal's Ctrl-C reaches only `up`, which stops the services before the broker and database.
        self.children[kind] = subprocess.Popen([sys.executable, "-m", "api.cli", kind], env=self.env, start_new_session=True)

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            for kind, child in list(self.children.items()):
                if child.poll() is not None:
                    log.error("service_died", service=kind, code=child.returncode)
                    self.start(kind)

    def stop_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in self.children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def chosen_services(settings: Settings) -> tuple[str, ...]:
    if settings.services is None:
        return SERVICES
    chosen = tuple(dict.fromkeys(kind.strip() for kind in settings.services.split(",") if kind.strip()))
    unknown = [kind for kind in chosen if kind not in SERVICES]
    if unknown or not chosen:
        raise SystemExit(f"PRESSROOM_SERVICES names {', '.join(unknown) or 'nothing'}; choose among {', '.join(SERVICES)}")
    return chosen


def up(settings: Settings) -> None:
    configure_logging(settings.log_level, process="up")
    services = chosen_services(settings)
    stop = stop_on_signals()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    postgres = broker = None
    supervisor = None
    try:
        if settings.database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir)
            postgres.ensure(
                at_least={"max_connections": EMBEDDED_MAX_CONNECTIONS, "min_wal_size": EMBEDDED_MIN_WAL_MB},
                exactly={"wal_init_zero": EMBEDDED_WAL_INIT_ZERO},
            )
            settings = msgspec.structs.replace(settings, database_url=postgres.url)
        if settings.kafka_bootstrap is None:
            broker = EmbeddedBroker(log_file=settings.data_dir / "broker.log")
            settings = msgspec.structs.replace(settings, kafka_bootstrap=broker.bootstrap)
        settings = msgspec.structs.replace(
            settings,
            admin_token=_kept_secret(settings.admin_token, settings.data_dir / "admin_token", 32),
            secret_key=_kept_secret(settings.secret_key, settings.data_dir / "secret_key", 48),
            # Tansu holds a consumer-group join for half the session timeout: keep it short here.
            kafka_session_timeout_ms=6000 if broker else settings.kafka_session_timeout_ms,
            kafka_heartbeat_interval_ms=1000 if broker else settings.kafka_heartbeat_interval_ms,
        )
        container = Container(settings)
        try:
            container.migrate()
            workspace_id, secret = _first_key(container, settings.data_dir)
        finally:
            container.close()
        supervisor = Supervisor({**os.environ, **settings.to_env()})
        for kind in services:
            supervisor.start(kind)
        print(  # noqa: T201 - the banner is for the person who ran the command
            f"\nPressroom is starting at http://{settings.host}:{settings.port}\n"
            f"  docs:         http://{settings.host}:{settings.port}/docs\n"
            f"  admin token:  {settings.admin_token}\n"
            f"  workspace:    {workspace_id}\n"
            f"  API key:      {secret}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        supervisor.watch(stop)
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        if broker is not None:
            broker.close()
        if postgres is not None:
            postgres.close()


def with_embedded_database(settings: Settings) -> Settings:
    """Operators' commands find the database `pressroom up` runs in the data directory, when none is configured."""
    pid_file = settings.data_dir / "postgres" / "postmaster.pid"
    if settings.database_url or not pid_file.exists():
        return settings
    lines = pid_file.read_text().splitlines()
    socket_dir = lines[4].strip() if len(lines) > 4 and lines[4].strip() else str((settings.data_dir / "postgres").resolve())
    return msgspec.structs.replace(settings, database_url=f"postgresql://postgres:@/postgres?host={socket_dir}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pressroom", description="Pressroom: AI ad creatives and social publishing.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start everything on this machine (embedded PostgreSQL and broker when not configured)")
    commands.add_parser("migrate", help="create the tables and topics, once, before the services start")
    for kind in SERVICES:
        if kind != "projections":  # `pressroom projections` alone runs them; its actions are the operators'
            commands.add_parser(kind, help=f"run the {kind} process")
    operator_cli.add_commands(commands)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.command == "catalogue":
        raise SystemExit(operator_cli.write_catalogue(args))
    if args.command in {"events", "state"} or (args.command == "projections" and args.action):
        raise SystemExit(operator_cli.run(args, with_embedded_database(settings)))
    if args.command == "up":
        up(settings)
    elif args.command == "migrate":
        migrate(settings)
    else:
        run_service(args.command, settings)


if __name__ == "__main__":
    main()
