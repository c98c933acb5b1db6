"""The operators' commands: the event log (`events show|export|tail`), aggregates as they were
(`state`), and the read models (`projections status|rebuild|verify`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from adapters.bootstrap import Container
from adapters.settings import Settings
from api.controllers.audit import state_of
from application.event_catalogue import asyncapi
from application.integration_events import envelope
from application.metadata import event_metadata
from projections.audit_log import entries
from projections.catalog import READ_MODELS
from projections.rebuild import rebuild_all, verify


def add_commands(commands: Any) -> None:
    events = commands.add_parser("events", help="the event log").add_subparsers(dest="action", required=True)
    show = events.add_parser("show", help="one aggregate's history, one line per event")
    show.add_argument("aggregate_id", type=UUID)
    export = events.add_parser("export", help="events as NDJSON, streamed; --resume appends after the file's last line")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--since", type=datetime.fromisoformat)
    export.add_argument("--until", type=datetime.fromisoformat)
    export.add_argument("--workspace", type=UUID)
    export.add_argument("--resume", action="store_true")
    tail = events.add_parser("tail", help="follow new events as they are recorded")
    tail.add_argument("--workspace", type=UUID)
    state = commands.add_parser("state", help="an aggregate as it was at a version or a time (or now)")
    state.add_argument("aggregate_id", type=UUID)
    when = state.add_mutually_exclusive_group()
    when.add_argument("--version", type=int)
    when.add_argument("--at", type=datetime.fromisoformat)
    projections = commands.add_parser(
        "projections", help="run the projections process; or, with an action, inspect and rebuild the read models"
    ).add_subparsers(dest="action", required=False)
    projections.add_parser("status", help="position and lag of every read model")
    rebuild_parser = projections.add_parser("rebuild", help="rebuild from position zero and swap in, while the system runs")
    rebuild_parser.add_argument("name", nargs="?", choices=[m.name for m in READ_MODELS])
    projections.add_parser("verify", help="rebuild into a scratch schema and compare with the live read models")
    catalogue = commands.add_parser("catalogue", help="write the AsyncAPI catalogue of every integration event")
    catalogue.add_argument("--out", type=Path, default=Path("docs/asyncapi.json"))
    for parser in (show, export, tail, state, *projections.choices.values()):
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, settings: Settings) -> int:
    container = Container(settings)
    try:
        command: Callable[[argparse.Namespace, Container], int] = COMMANDS[(args.command, getattr(args, "action", None))]
        return command(args, container)
    finally:
        container.close()


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def progress(label: str, total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long work (none with --json)."""
    done = 0
    started = time.monotonic()

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if quiet:
            return
        width, share = 30, min(done / total, 1.0) if total else 1.0
        rate = done / max(time.monotonic() - started, 1e-6)
        sys.stderr.write(f"\r{label} [{'#' * int(share * width):<{width}}] {done:,}/{total:,} ({rate:,.0f}/s)")
        sys.stderr.flush()

    yield advance
    if not quiet:
        sys.stderr.write("\n")


def show_events(args: argparse.Namespace, container: Container) -> int:
    history = list(container.app.events.get(args.aggregate_id))
    if not history:
        out(f"no events for {args.aggregate_id}")
        return 1
    for event in history:
        published, meta = envelope(event), event_metadata(event)
        if args.json:
            out(msgspec.json.encode({"envelope": published, "metadata": meta}).decode())
        else:
            cause = "  ".join(f"{k}={v}" for k, v in meta.items())
            out(f"{published.version:>4}  {published.occurred_at.isoformat()}  {published.type:<28} {cause}")
    return 0


def export_events(args: argparse.Namespace, container: Container) -> int:
    after = _last_position(args.out) if args.resume and args.out.exists() else 0
    total = (container.app.recorder.max_notification_id() or 0) - after
    written = 0
    with args.out.open("a" if args.resume else "w") as file, progress("export", total, args.json) as advance:
        while page := entries(container.pool, workspace_id=args.workspace, after=after, since=args.since, until=args.until, limit=5000):
            for entry in page:
                file.write(msgspec.json.encode(entry).decode() + "\n")
            advance(page[-1].position - after)
            after, written = page[-1].position, written + len(page)
    out(
        msgspec.json.encode({"written": written, "lastPosition": after}).decode()
        if args.json
        else f"{written:,} events, up to position {after}"
    )
    return 0


def _last_position(path: Path) -> int:
    last = b""
    with path.open("rb") as file:
        for line in file:
            last = line if line.strip() else last
    return int(msgspec.json.decode(last)["position"]) if last else 0


def tail_events(args: argparse.Namespace, container: Container) -> int:
    after = container.app.recorder.max_notification_id() or 0
    while True:
        page = entries(container.pool, workspace_id=args.workspace, after=after, limit=500)
        for entry in page:
            e = entry.envelope
            out(
                msgspec.json.encode(entry).decode()
                if args.json
                else f"{entry.position:>8}  {e.occurred_at.isoformat()}  {e.type:<28} {e.aggregate_id}"
            )
        after = page[-1].position if page else after
        if not page:
            time.sleep(0.25)


def show_state(args: argparse.Namespace, container: Container) -> int:
    aggregate = container.app.as_of(None, args.aggregate_id, version=args.version, at=args.at)
    body = {"aggregateType": type(aggregate).__name__, "id": str(aggregate.id), "version": aggregate.version, "state": state_of(aggregate)}
    out(msgspec.json.encode(body).decode() if args.json else msgspec.json.format(msgspec.json.encode(body), indent=2).decode())
    return 0


def projections_status(args: argparse.Namespace, container: Container) -> int:
    head = container.app.recorder.max_notification_id() or 0
    status = {view.name: {"position": view.position() or 0, "lag": head - (view.position() or 0)} for view in container.views()}
    if args.json:
        out(msgspec.json.encode({"head": head, "projections": status}).decode())
    else:
        out(f"log head: {head}")
        for name, state in status.items():
            out(f"{name:<16} position {state['position']:>10}  lag {state['lag']:>8}")
    return 0


def projections_rebuild(args: argparse.Namespace, container: Container) -> int:
    models = [m for m in READ_MODELS if args.name in (None, m.name)]
    head = container.app.recorder.max_notification_id() or 0
    started = time.monotonic()
    with progress(f"rebuild {', '.join(m.name for m in models)}", head, args.json) as advance:
        applied = rebuild_all(container.app, container.database_url, models, advance)
    seconds = time.monotonic() - started
    names = [m.name for m in models]
    summary = {
        "rebuilt": names,
        "events": applied,
        "seconds": round(seconds, 3),
        "eventsPerSecond": round(applied / seconds),
    }
    out(msgspec.json.encode(summary).decode() if args.json else f"rebuilt {', '.join(names)}: {applied:,} events in {seconds:.1f} s")
    return 0


def projections_verify(args: argparse.Namespace, container: Container) -> int:
    drift = [d for model in READ_MODELS for d in verify(container.app, container.database_url, model)]
    if args.json:
        out(msgspec.json.encode({"ok": not drift, "drift": drift}).decode())
    elif not drift:
        out(f"all {len(READ_MODELS)} read models match a rebuild from the log")
    for d in [] if args.json else drift:
        out(f"DRIFT in {d.table}:")
        out("\n".join(f"  live only:    {row}" for row in d.only_live))
        out("\n".join(f"  rebuilt only: {row}" for row in d.only_rebuilt))
    return 1 if drift else 0


def write_catalogue(args: argparse.Namespace) -> int:
    args.out.write_bytes(msgspec.json.format(msgspec.json.encode(asyncapi()), indent=2) + b"\n")
    out(f"wrote {args.out}")
    return 0


COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace, Container], int]] = {
    ("events", "show"): show_events,
    ("events", "export"): export_events,
    ("events", "tail"): tail_events,
    ("state", None): show_state,
    ("projections", "status"): projections_status,
    ("projections", "rebuild"): projections_rebuild,
    ("projections", "verify"): projections_verify,
}
