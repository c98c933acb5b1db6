"""The Mastodon publisher against a fake instance: statuses with Idempotency-Key, media v2, verify, delete."""

from __future__ import annotations

import pytest

from application.ports import Attachment, PublishError, Receipt
from tests.fakes import tiny_mp4, tiny_png
from tests.integration.publishers.conftest import Platform, image, outgoing


def test_text_post_when_published_then_bearer_idempotency_key_and_status_json(mastodon: Platform) -> None:
    post = outgoing("Cold water for 24 hours.")
    receipt = mastodon.publisher().publish(mastodon.credentials, post)
    (request,) = mastodon.fake.requests
    assert (request.method, request.path) == ("POST", "/api/v1/statuses")
    assert request.headers["authorization"] == f"Bearer {mastodon.fake.access_token}"
    assert request.headers["idempotency-key"] == post.idempotency_key
    assert request.json() == {"status": "Cold water for 24 hours."}
    status = mastodon.fake.posts[0]
    assert receipt == Receipt(provider_post_id=status["id"], url=f"{mastodon.fake.url}/@alice/{status['id']}")


def test_post_with_images_when_published_then_uploaded_first_and_attached_by_id(mastodon: Platform) -> None:
    mastodon.publisher().publish(mastodon.credentials, outgoing("Two.", media=(image("a.png"), image("b.png"))))
    uploads = mastodon.fake.seen("POST", "/api/v2/media")
    assert [u.form()["file"].filename for u in uploads] == ["a.png", "b.png"]
    assert uploads[0].form()["file"].content == tiny_png(4, 3)
    assert all(u.headers["authorization"] == f"Bearer {mastodon.fake.access_token}" for u in uploads)
    (status,) = mastodon.fake.seen("POST", "/api/v1/statuses")
    assert status.json() == {"status": "Two.", "media_ids": list(mastodon.fake.media)}
    assert len(mastodon.fake.posts[0]["media_attachments"]) == 2


def test_video_still_processing_when_published_then_polled_until_ready_before_the_status(mastodon: Platform) -> None:
    mastodon.fake.processing_polls = 2
    video = Attachment(content=tiny_mp4(), mime="video/mp4", url="https://media.example.com/v.mp4", filename="v.mp4")
    mastodon.publisher().publish(mastodon.credentials, outgoing("Watch.", media=(video,)))
    (media_id,) = mastodon.fake.media
    assert [(r.method, r.path) for r in mastodon.fake.requests] == [
        ("POST", "/api/v2/media"),
        *[("GET", f"/api/v1/media/{media_id}")] * 3,
        ("POST", "/api/v1/statuses"),
    ]
    assert len(mastodon.fake.posts) == 1


def test_same_post_when_published_again_within_the_hour_then_the_same_status_and_one_post(mastodon: Platform) -> None:
    publisher = mastodon.publisher()
    post = outgoing()
    first = publisher.publish(mastodon.credentials, post)
    again = publisher.find(mastodon.credentials, post)
    assert again == first
    assert len(mastodon.fake.posts) == 1


def test_rejected_status_when_publishing_then_provider_rejected_with_mastodon_message(mastodon: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        mastodon.publisher().publish(mastodon.credentials, outgoing("x" * 501))
    assert (caught.value.code, caught.value.http_status) == ("provider_rejected", 422)
    assert "Text character limit of 500 exceeded" in caught.value.message


def test_revoked_token_when_verified_then_account_unauthorized(mastodon: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        mastodon.publisher().verify(mastodon.bad_credentials)
    assert caught.value.code == "account_unauthorized"
    assert "The access token is invalid" in caught.value.message


def test_instance_given_as_a_bare_host_when_verified_then_https_is_assumed(mastodon: Platform) -> None:
    host = mastodon.fake.url.removeprefix("http://")
    with pytest.raises(PublishError) as caught:  # the fake speaks plain HTTP: the TLS handshake fails
        mastodon.publisher().verify({"instanceUrl": host, "accessToken": mastodon.fake.access_token})
    assert caught.value.code == "provider_unavailable"


def test_published_status_when_deleted_then_delete_on_its_path(mastodon: Platform) -> None:
    publisher = mastodon.publisher()
    receipt = publisher.publish(mastodon.credentials, outgoing())
    publisher.delete(mastodon.credentials, receipt)
    request = mastodon.fake.seen("DELETE")[0]
    assert request.path == f"/api/v1/statuses/{receipt.provider_post_id}"
    assert request.headers["authorization"] == f"Bearer {mastodon.fake.access_token}"
