"""The Discord publisher against a fake of Discord's webhook API: execute, multipart, verify, delete."""

from __future__ import annotations

import json

import pytest

from application.ports import PublishError, Receipt
from tests.fakes import tiny_png
from tests.integration.publishers.conftest import Platform, image, outgoing


def test_text_post_when_published_then_json_execute_with_wait_and_no_mentions(discord: Platform) -> None:
    receipt = discord.publisher().publish(discord.credentials, outgoing("Hello @everyone, new bottles!"))
    (request,) = discord.fake.seen("POST")
    assert request.path == f"/api/webhooks/{discord.fake.webhook_id}/{discord.fake.token}"
    assert request.query == {"wait": "true"}
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"content": "Hello @everyone, new bottles!", "allowed_mentions": {"parse": []}}
    assert receipt == Receipt(provider_post_id=discord.fake.posts[0]["id"], url=None)


def test_post_with_images_when_published_then_multipart_payload_json_and_numbered_files(discord: Platform) -> None:
    post = outgoing("Two colours.", media=(image("blue.png"), image("red.png", (5, 5))))
    discord.publisher().publish(discord.credentials, post)
    (request,) = discord.fake.seen("POST")
    form = request.form()
    assert json.loads(form["payload_json"].text) == {
        "content": "Two colours.",
        "allowed_mentions": {"parse": []},
        "attachments": [{"id": 0, "filename": "blue.png"}, {"id": 1, "filename": "red.png"}],
    }
    assert (form["files[0]"].filename, form["files[0]"].content_type, form["files[0]"].content) == ("blue.png", "image/png", tiny_png(4, 3))
    assert form["files[1]"].content == tiny_png(5, 5)
    assert [a["filename"] for a in discord.fake.posts[0]["attachments"]] == ["blue.png", "red.png"]


def test_webhook_url_of_a_thread_when_published_and_deleted_then_thread_id_kept(discord: Platform) -> None:
    credentials = {"webhookUrl": f"{discord.fake.webhook_url}?thread_id=987654321"}
    publisher = discord.publisher()
    receipt = publisher.publish(credentials, outgoing())
    publisher.delete(credentials, receipt)
    assert discord.fake.seen("POST")[0].query == {"thread_id": "987654321", "wait": "true"}
    assert discord.fake.seen("DELETE")[0].query == {"thread_id": "987654321"}


def test_rate_limited_when_publishing_then_the_exact_wait_from_the_body(discord: Platform) -> None:
    discord.fake.rate_limit("POST", "/api/webhooks/*", retry_after="0.35")
    with pytest.raises(PublishError) as caught:
        discord.publisher().publish(discord.credentials, outgoing())
    assert caught.value.retry_after == 0.35
    assert "You are being rate limited." in caught.value.message


def test_deleted_webhook_when_publishing_then_account_unauthorized(discord: Platform) -> None:
    credentials = {"webhookUrl": discord.fake.webhook_url.replace(discord.fake.webhook_id, "999")}
    with pytest.raises(PublishError) as caught:
        discord.publisher().publish(credentials, outgoing())
    assert (caught.value.code, caught.value.http_status) == ("account_unauthorized", 404)
    assert "Unknown Webhook" in caught.value.message


def test_published_message_when_deleted_then_delete_on_the_message_path(discord: Platform) -> None:
    publisher = discord.publisher()
    receipt = publisher.publish(discord.credentials, outgoing())
    publisher.delete(discord.credentials, receipt)
    (request,) = discord.fake.seen("DELETE")
    assert request.path == f"/api/webhooks/{discord.fake.webhook_id}/{discord.fake.token}/messages/{receipt.provider_post_id}"


def test_webhook_when_verified_then_one_get_of_the_webhook_url(discord: Platform) -> None:
    discord.publisher().verify(discord.credentials)
    (request,) = discord.fake.requests
    assert (request.method, request.path, request.query) == ("GET", f"/api/webhooks/{discord.fake.webhook_id}/{discord.fake.token}", {})


def test_webhook_url_of_another_scheme_when_publishing_then_url_not_allowed_without_the_token(discord: Platform) -> None:
    credentials = {"webhookUrl": discord.fake.webhook_url.replace("http://", "ftp://")}
    with pytest.raises(PublishError) as caught:
        discord.publisher().publish(credentials, outgoing())
    assert caught.value.code == "url_not_allowed"
    assert discord.fake.token not in caught.value.message
