"""`pressroom up` as a newcomer runs it: everything embedded, and Ctrl-C stops it all, however often pressed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from adapters.embedded import free_port
from tests.conftest import wait_for


def test_up_starts_everything_embedded_and_repeated_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PRESSROOM_DATA_DIR": str(tmp_path / "var"), "PRESSROOM_PORT": str(port), "PRESSROOM_LOG_LEVEL": "warning"}
    for name in ("PRESSROOM_DATABASE_URL", "PRESSROOM_KAFKA_BOOTSTRAP", "PRESSROOM_ADMIN_TOKEN"):
        env.pop(name, None)
    up = subprocess.Popen([sys.executable, "-m", "api.cli", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _healthy(port), timeout=90, interval=0.3)
        family = psutil.Process(up.pid).children(recursive=True)
        assert len(family) >= 6  # the broker and the five services (PostgreSQL runs detached, stopped by `up`)

        for _ in range(3):  # an impatient user
            up.send_signal(signal.SIGINT)
            time.sleep(0.3)
        up.wait(timeout=40)
    finally:
        if up.poll() is None:
            up.kill()
    output = up.stdout.read().decode() if up.stdout else ""

    assert up.returncode == 0, output
    assert "API key:      pr_live_" in output and (tmp_path / "var" / "admin_token").exists()
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not _postgres_serving(tmp_path / "var")


def _postgres_serving(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL runs detached from `up`, which must still stop it."""
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or [])
    ]


def _healthy(port: int) -> bool:
    try:
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
    except httpx.HTTPError:
        return False
    return bool(health["ok"]) and len(health["workers"]) >= 4
