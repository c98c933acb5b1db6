"""The embedded PostgreSQL that `pressroom up` runs: its settings are brought to what Pressroom needs, with a
restart only when one is wrong."""

from __future__ import annotations

from pathlib import Path

import psycopg

from adapters.embedded import EmbeddedPostgres


def settings(url: str, *names: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(names),)).fetchall()
    return dict(rows)


def checkpointer_pid(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").fetchone()
    assert row is not None
    return int(row[0])


def test_settings_below_or_unlike_what_is_asked_then_set_and_asked_again_then_no_restart(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path, delete_on_close=True) as postgres:
        postgres.ensure(at_least={"max_connections": 150, "min_wal_size": 128}, exactly={"wal_init_zero": "off"})
        first = settings(postgres.url, "max_connections", "min_wal_size", "wal_init_zero")
        running = checkpointer_pid(postgres.url)
        postgres.ensure(at_least={"max_connections": 120, "min_wal_size": 80}, exactly={"wal_init_zero": "off"})

        assert first == {"max_connections": "150", "min_wal_size": "128", "wal_init_zero": "off"}
        assert checkpointer_pid(postgres.url) == running  # nothing was wrong the second time: no restart
        assert settings(postgres.url, "max_connections", "min_wal_size") == {"max_connections": "150", "min_wal_size": "128"}
