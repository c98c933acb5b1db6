"""Every manual provider's publisher against its fake: the outcomes the publishing worker relies on."""

from __future__ import annotations

import time

import pytest

from adapters.outbound_http import OutboundOptions
from adapters.publishers import MANUAL_PROVIDERS, publisher_for
from application.ports import PublishError
from tests.integration.publishers.conftest import Platform, outgoing

READ_TIMEOUT = 1.0  # the publisher gives up on the answer after this long…
STALL = 4.0  # …while the fake, having stored the post, holds its answer this long


def test_post_when_published_then_the_fake_holds_it_once_under_the_receipt_id(platform: Platform) -> None:
    receipt = platform.publisher().publish(platform.credentials, outgoing("Cold water for 24 hours."))
    (post,) = platform.posts
    assert receipt.provider_post_id == platform.post_id(post)


def test_rate_limited_when_publishing_then_rate_limited_retryable_with_the_wait_asked(platform: Platform) -> None:
    platform.fake.rate_limit(*platform.create, retry_after="7")
    with pytest.raises(PublishError) as caught:
        platform.publisher().publish(platform.credentials, outgoing())
    error = caught.value
    assert (error.code, error.retryable, error.sent, error.http_status) == ("rate_limited", True, False, 429)
    assert error.retry_after == pytest.approx(7, abs=1.0)
    assert platform.posts == []


def test_server_error_when_publishing_then_provider_unavailable_retryable(platform: Platform) -> None:
    platform.fake.fail(*platform.create, status=500)
    with pytest.raises(PublishError) as caught:
        platform.publisher().publish(platform.credentials, outgoing())
    error = caught.value
    assert (error.code, error.retryable, error.sent, error.http_status) == ("provider_unavailable", True, False, 500)
    assert platform.posts == []


def test_post_accepted_but_answered_late_when_publishing_then_outcome_unknown_sent(platform: Platform) -> None:
    platform.fake.accept_then_stall(*platform.create, seconds=STALL)
    started = time.monotonic()
    with pytest.raises(PublishError) as caught:
        platform.publisher(read_timeout=READ_TIMEOUT).publish(platform.credentials, outgoing())
    error = caught.value
    assert (error.code, error.retryable, error.sent) == ("outcome_unknown", False, True)
    assert len(platform.posts) == 1
    assert time.monotonic() - started < STALL


def test_outcome_unknown_when_reconciled_then_find_returns_the_one_post(reconciling_platform: Platform) -> None:
    platform = reconciling_platform
    platform.fake.accept_then_stall(*platform.create, seconds=STALL)
    post = outgoing()
    with pytest.raises(PublishError):
        platform.publisher(read_timeout=READ_TIMEOUT).publish(platform.credentials, post)
    receipt = platform.publisher().find(platform.credentials, post)  # reconcile: another worker, later
    (stored,) = platform.posts
    assert receipt is not None
    assert receipt.provider_post_id == platform.post_id(stored)


def test_outcome_unknown_on_a_platform_that_cannot_list_posts_when_reconciled_then_reconcile_unsupported(
    unreconcilable_platform: Platform,
) -> None:
    platform = unreconcilable_platform
    with pytest.raises(PublishError) as caught:
        platform.publisher().find(platform.credentials, outgoing())
    assert (caught.value.code, caught.value.retryable) == ("reconcile_unsupported", False)
    assert platform.fake.requests == []


def test_invalid_credentials_when_publishing_then_account_unauthorized_and_nothing_posted(platform: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        platform.publisher().publish(platform.bad_credentials, outgoing())
    error = caught.value
    assert (error.code, error.retryable, error.http_status) == ("account_unauthorized", False, 401)
    assert platform.posts == []
    assert all(secret not in error.message for secret in platform.bad_credentials.values())


def test_missing_credentials_when_publishing_then_account_unauthorized_without_a_request(platform: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        platform.publisher().publish({}, outgoing())
    assert (caught.value.code, caught.value.retryable) == ("account_unauthorized", False)
    assert platform.fake.requests == []


def test_loopback_platform_when_private_addresses_refused_then_url_not_allowed_without_a_request(platform: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        platform.publisher(allow_private=False).publish(platform.credentials, outgoing())
    assert (caught.value.code, caught.value.retryable) == ("url_not_allowed", False)
    assert platform.fake.requests == []
    assert all(value not in caught.value.message for value in platform.credentials.values())


def test_platform_down_when_publishing_then_provider_unavailable_retryable_not_sent(platform: Platform) -> None:
    publisher = platform.publisher()
    platform.fake.stop()
    with pytest.raises(PublishError) as caught:
        publisher.publish(platform.credentials, outgoing())
    assert (caught.value.code, caught.value.retryable, caught.value.sent) == ("provider_unavailable", True, False)


def test_credentials_when_verified_then_the_profile_they_post_as(platform: Platform) -> None:
    assert platform.publisher().verify(platform.credentials) == platform.profile


def test_published_post_when_deleted_twice_then_gone_and_the_second_delete_succeeds(deleting_platform: Platform) -> None:
    platform = deleting_platform
    publisher = platform.publisher()
    receipt = publisher.publish(platform.credentials, outgoing())
    publisher.delete(platform.credentials, receipt)
    assert platform.posts == []
    publisher.delete(platform.credentials, receipt)


@pytest.mark.parametrize("provider", MANUAL_PROVIDERS)
def test_manual_provider_when_asked_for_then_a_publisher_at_the_public_address(provider: str) -> None:
    publisher = publisher_for(provider, OutboundOptions())
    assert callable(publisher.publish)
    publisher.close()  # type: ignore[attr-defined]


def test_unknown_provider_when_asked_for_then_value_error() -> None:
    with pytest.raises(ValueError, match="no publisher for provider 'x'"):
        publisher_for("x", OutboundOptions())
