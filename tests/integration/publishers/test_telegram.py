"""The Telegram publisher against a fake Bot API: sendMessage, sendPhoto, envelopes, getMe/getChat, deleteMessage."""

from __future__ import annotations

import pytest

from adapters.publishers.telegram import TelegramPublisher
from application.ports import Attachment, PublishError, Receipt
from tests.fakes import FakeTelegram, tiny_mp4, tiny_png
from tests.integration.providers.conftest import fast_options
from tests.integration.publishers.conftest import Platform, image, outgoing


def test_text_post_when_published_then_send_message_and_a_public_link(telegram: Platform) -> None:
    receipt = telegram.publisher().publish(telegram.credentials, outgoing("Cold water for 24 hours."))
    (request,) = telegram.fake.requests
    assert (request.method, request.path) == ("POST", f"/bot{telegram.fake.bot_token}/sendMessage")
    assert request.json() == {"chat_id": telegram.fake.chat_id, "text": "Cold water for 24 hours."}
    message_id = telegram.fake.posts[0]["message_id"]
    assert receipt == Receipt(provider_post_id=str(message_id), url=f"https://t.me/pressroom_news/{message_id}")


def test_post_with_one_image_when_published_then_send_photo_multipart_with_caption(telegram: Platform) -> None:
    telegram.publisher().publish(telegram.credentials, outgoing("Look at it.", media=(image("a.png"),)))
    (request,) = telegram.fake.requests
    assert request.path == f"/bot{telegram.fake.bot_token}/sendPhoto"
    form = request.form()
    assert (form["chat_id"].text, form["caption"].text) == (telegram.fake.chat_id, "Look at it.")
    assert (form["photo"].filename, form["photo"].content_type, form["photo"].content) == ("a.png", "image/png", tiny_png(4, 3))
    assert telegram.fake.posts[0]["caption"] == "Look at it."


def test_post_with_one_video_when_published_then_send_video(telegram: Platform) -> None:
    video = Attachment(content=tiny_mp4(), mime="video/mp4", url="https://media.example.com/v.mp4", filename="v.mp4")
    telegram.publisher().publish(telegram.credentials, outgoing("Watch.", media=(video,)))
    (request,) = telegram.fake.requests
    assert request.path.endswith("/sendVideo")
    assert request.form()["video"].content == tiny_mp4()


def test_post_with_two_files_when_published_then_unsupported_media_without_a_request(telegram: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        telegram.publisher().publish(telegram.credentials, outgoing(media=(image("a.png"), image("b.png"))))
    assert (caught.value.code, caught.value.retryable) == ("unsupported_media", False)
    assert telegram.fake.requests == []


def test_private_chat_when_published_then_no_link() -> None:
    with FakeTelegram(chat_username=None) as fake, TelegramPublisher(fast_options(), api_base=fake.api_base) as publisher:
        receipt = publisher.publish({"botToken": fake.bot_token, "chatId": fake.chat_id}, outgoing())
    assert receipt.url is None


def test_rate_limited_when_publishing_then_retry_after_from_the_envelope_parameters(telegram: Platform) -> None:
    telegram.fake.rate_limit("POST", "/bot*/sendMessage", retry_after="12")
    with pytest.raises(PublishError) as caught:
        telegram.publisher().publish(telegram.credentials, outgoing())
    assert (caught.value.code, caught.value.retry_after) == ("rate_limited", 12.0)
    assert caught.value.message == "telegram answered HTTP 429: Too Many Requests: retry after 12"


def test_wrong_token_when_publishing_then_account_unauthorized_and_the_token_never_shown(telegram: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        telegram.publisher().publish(telegram.bad_credentials, outgoing())
    assert caught.value.message == "telegram answered HTTP 401: Unauthorized"


def test_unknown_chat_when_verified_then_provider_rejected_chat_not_found(telegram: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        telegram.publisher().verify({"botToken": telegram.fake.bot_token, "chatId": "-100999"})
    assert (caught.value.code, caught.value.http_status) == ("provider_rejected", 400)
    assert "chat not found" in caught.value.message


def test_credentials_when_verified_then_get_me_and_get_chat(telegram: Platform) -> None:
    telegram.publisher().verify(telegram.credentials)
    assert [r.path.rsplit("/", 1)[1] for r in telegram.fake.requests] == ["getMe", "getChat"]
    assert telegram.fake.requests[1].json() == {"chat_id": telegram.fake.chat_id}


def test_published_message_when_deleted_then_delete_message_with_chat_and_id(telegram: Platform) -> None:
    publisher = telegram.publisher()
    receipt = publisher.publish(telegram.credentials, outgoing())
    publisher.delete(telegram.credentials, receipt)
    request = telegram.fake.seen("POST", "/bot*/deleteMessage")[0]
    assert request.json() == {"chat_id": telegram.fake.chat_id, "message_id": int(receipt.provider_post_id)}
