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
