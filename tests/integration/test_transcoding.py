"""Every event the system stores reads back the same through the application's msgspec transcoder as through eventsourcing's own."""

from __future__ import annotations

from eventsourcing.persistence import JSONTranscoder, Mapper

from adapters.bootstrap import Container
from application.transcoding import MsgspecJSONTranscoder
from tests.integration.test_operator_commands import every_kind_of_event
from tests.unit.adapters.test_transcoding import same


def test_stored_workload_of_every_event_type_when_read_then_both_transcoders_give_the_same_events(container: Container) -> None:
    every_kind_of_event(container)
    app = container.app
    standard = JSONTranscoder()
    app.register_transcodings(standard)
    library = Mapper(transcoder=standard)

    stored = app.recorder.select_notifications(start=None, limit=10_000)

    assert isinstance(app.mapper.transcoder, MsgspecJSONTranscoder) and len(stored) > 30
    for notification in stored:
        assert same(app.mapper.transcoder.decode(notification.state), standard.decode(notification.state)), notification.topic
        read, expected = app.mapper.to_domain_event(notification), library.to_domain_event(notification)
        assert type(read) is type(expected) and same(vars(read), vars(expected)), notification.topic
