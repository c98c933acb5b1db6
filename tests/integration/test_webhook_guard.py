"""Outbound webhook URLs are guarded like every other outbound call: private addresses are refused
when subscribing and again when delivering (a name can resolve elsewhere later), unless allowed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import Container
from api.app import create_app
from application.integration_events import envelope
from tests.conftest import catch_up_all
from tests.fakes.subscriber import EventReceiver


@pytest.fixture
def guarded(make_container: Callable[..., Container]) -> Container:
    return make_container(allow_private_urls=False)


@pytest.fixture
def receiver() -> Iterator[EventReceiver]:
    with EventReceiver() as fake:
        yield fake


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hooks", "http://10.1.2.3/hooks", "http://[::1]/hooks", "http://169.254.169.254/"])
def test_subscribing_a_private_address_is_refused(guarded: Container, url: str) -> None:
    _, key = guarded.app.create_workspace("Acme")
    with TestClient(create_app(guarded.settings, guarded)) as client:
        answer = client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers={"Authorization": f"Bearer {key.secret}"})
        listed = client.get("/v1/webhooks", headers={"Authorization": f"Bearer {key.secret}"}).json()

    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"path": "url", "message": answer.json()["errors"][0]["message"]}]
    assert "private" in answer.json()["errors"][0]["message"]
    assert listed == {"webhooks": []}


def test_delivery_to_a_private_address_is_refused_and_logged(guarded: Container, receiver: EventReceiver) -> None:
    workspace, _ = guarded.app.create_workspace("Acme")
    # Recorded without the API's check, as if the name had resolved to a public address when subscribing.
    webhook = guarded.app.create_webhook(workspace.id, receiver.url, ("*",))
    catch_up_all(guarded)
    dispatcher = guarded.webhook_dispatcher()
    [created] = guarded.app.events.get(webhook.id)

    dispatcher.handle(envelope(created))
    outcomes = [dispatcher.deliver(due) for due in dispatcher.queue.claim(guarded.clock.now(), 10)]

    assert outcomes == ["retrying"]
    assert receiver.requests == []
    with guarded.pool.connection() as conn:
        [(error,)] = conn.execute("SELECT error FROM webhook_attempts WHERE webhook_id = %s", (webhook.id,)).fetchall()
    assert "private" in error
