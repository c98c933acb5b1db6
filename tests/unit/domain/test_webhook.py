from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import InvalidState
from domain.webhook import Webhook, subscribes_to


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (("*",), "credits.debited", True),
        (("job.*",), "job.completed", True),
        (("job.*",), "credits.debited", False),
        (("job.completed",), "job.completed", True),
        (("job.completed",), "job.canceled", False),
        (("job.completed", "credits.*"), "credits.refunded", True),
    ],
)
def test_a_webhook_subscribes_to_exact_types_families_or_everything(patterns: tuple[str, ...], event_type: str, expected: bool) -> None:
    assert subscribes_to(patterns, event_type) is expected


def test_each_replay_is_numbered_so_a_second_one_delivers_again() -> None:
    webhook = Webhook.create(uuid4(), "https://example.com/in", ("*", "*"))
    webhook.request_replay(after=10)
    webhook.request_replay(after=10)

    assert webhook.events == ("*",)
    assert [e.replay for e in webhook.collect_events() if isinstance(e, Webhook.ReplayRequested)] == [1, 2]


def test_a_removed_webhook_subscribes_to_nothing_and_cannot_replay_or_be_removed_again() -> None:
    webhook = Webhook.create(uuid4(), "https://example.com/in", ("*",))
    webhook.remove()

    assert not webhook.subscribes_to("job.completed")
    with pytest.raises(InvalidState):
        webhook.request_replay(after=0)
    with pytest.raises(InvalidState):
        webhook.remove()
