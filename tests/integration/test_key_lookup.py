"""API keys read in the event loop: keys asked for together are read together, and each request gets its own."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from adapters.bootstrap import Container
from adapters.key_lookup import KeyLookup
from application.pressroom import Principal
from domain.api_key import ApiKey


def test_keys_asked_for_together_each_come_back_as_stored(container: Container) -> None:
    app = container.app
    workspace, first = app.create_workspace("Acme")
    second, third = app.issue_key(workspace.id, "second"), app.issue_key(workspace.id, "third")
    app.revoke_key(Principal(workspace_id=workspace.id, key_id=first.key.id), third.key.id)
    lookup = KeyLookup(container.database_url, app)
    asked = [first.key.id, second.key.id, third.key.id, uuid4(), first.key.id]

    async def ask() -> list[ApiKey | None]:
        try:
            return list(await asyncio.gather(*(lookup.find(key_id) for key_id in asked)))
        finally:
            await lookup.close()

    found = asyncio.run(ask())

    assert [key.id if key else None for key in found] == [*asked[:3], None, asked[0]]
    assert [key.is_revoked if key else None for key in found] == [False, False, True, None, False]
    assert found[0] is not None and found[0].matches(first.secret)


def test_key_read_then_revoked_by_another_writer_then_the_next_lookup_finds_it_revoked(container: Container) -> None:
    app = container.app
    workspace, issued = app.create_workspace("Acme")
    other = app.issue_key(workspace.id, "other")
    lookup = KeyLookup(container.database_url, app)

    async def ask_revoke_ask() -> tuple[ApiKey | None, ApiKey | None]:
        try:
            before = await lookup.find(other.key.id)
            app.revoke_key(Principal(workspace_id=workspace.id, key_id=issued.key.id), other.key.id)
            return before, await lookup.find(other.key.id)
        finally:
            await lookup.close()

    before, after = asyncio.run(ask_revoke_ask())

    assert before is not None and not before.is_revoked
    assert after is not None and after.is_revoked


def test_lookups_overlap_and_both_read_a_revocation_then_each_finds_the_key_revoked(container: Container) -> None:
    """The second read starts from the version the first had in memory, before the first brought it further."""
    app = container.app
    workspace, issued = app.create_workspace("Acme")
    other = app.issue_key(workspace.id, "other")
    lookup = KeyLookup(container.database_url, app)

    async def overlapping() -> list[ApiKey | None]:
        try:
            await lookup.find(other.key.id)  # in memory, not revoked
            app.revoke_key(Principal(workspace_id=workspace.id, key_id=issued.key.id), other.key.id)
            first = asyncio.create_task(lookup.find(other.key.id))
            for _ in range(3):  # the first read takes its keys and waits for PostgreSQL
                await asyncio.sleep(0)
            second = asyncio.create_task(lookup.find(other.key.id))
            return list(await asyncio.wait_for(asyncio.gather(first, second), timeout=10))
        finally:
            await lookup.close()

    found = asyncio.run(overlapping())

    assert [key.is_revoked if key else None for key in found] == [True, True]
