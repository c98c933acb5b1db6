"""The Bluesky publisher against a fake PDS: sessions, createRecord under a derived TID, blobs, facets, getRecord."""

from __future__ import annotations

import re

import pytest

from adapters.publishers.bluesky import facets, record_key
from application.ports import Attachment, PublishError, Receipt
from tests.fakes import tiny_mp4, tiny_png
from tests.integration.publishers.conftest import Platform, image, outgoing

TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def test_text_post_when_published_then_session_then_create_record_under_the_derived_key(bluesky: Platform) -> None:
    fake = bluesky.fake
    post = outgoing("Cold water for 24 hours.")
    receipt = bluesky.publisher().publish(bluesky.credentials, post)
    session, create = fake.requests
    assert (session.method, session.path) == ("POST", "/xrpc/com.atproto.server.createSession")
    assert session.json() == {"identifier": fake.handle, "password": fake.app_password}
    assert (create.method, create.path) == ("POST", "/xrpc/com.atproto.repo.createRecord")
    assert create.headers["authorization"].startswith("Bearer access-")
    body = create.json()
    rkey = record_key(post.idempotency_key)
    assert {k: body[k] for k in ("repo", "collection", "rkey")} == {"repo": fake.did, "collection": "app.bsky.feed.post", "rkey": rkey}
    record = body["record"]
    assert set(record) == {"$type", "text", "createdAt"}
    assert (record["$type"], record["text"]) == ("app.bsky.feed.post", "Cold water for 24 hours.")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["createdAt"])
    uri = f"at://{fake.did}/app.bsky.feed.post/{rkey}"
    assert receipt == Receipt(provider_post_id=uri, url=f"https://bsky.app/profile/{fake.handle}/post/{rkey}")


def test_idempotency_keys_when_turned_into_record_keys_then_valid_tids_stable_and_distinct() -> None:
    keys = [f"post:{n}" for n in range(2000)]
    rkeys = [record_key(key) for key in keys]
    assert all(TID.match(rkey) for rkey in rkeys)
    assert len(set(rkeys)) == len(keys)
    assert [record_key(key) for key in keys] == rkeys


def test_two_posts_when_published_then_one_session_is_kept_and_reused(bluesky: Platform) -> None:
    publisher = bluesky.publisher()
    publisher.publish(bluesky.credentials, outgoing())
    publisher.publish(bluesky.credentials, outgoing())
    assert len(bluesky.fake.seen("POST", "*createSession")) == 1
    assert len(bluesky.fake.posts) == 2


def test_expired_access_token_when_publishing_then_refreshed_and_posted_once(bluesky: Platform) -> None:
    publisher = bluesky.publisher()
    publisher.publish(bluesky.credentials, outgoing())
    bluesky.fake.expire_access_tokens()
    publisher.publish(bluesky.credentials, outgoing())
    assert [r.path.removeprefix("/xrpc/com.atproto.") for r in bluesky.fake.requests] == [
        "server.createSession",
        "repo.createRecord",
        "repo.createRecord",
        "server.refreshSession",
        "repo.createRecord",
    ]
    assert bluesky.fake.requests[3].headers["authorization"].startswith("Bearer refresh-")
    assert len(bluesky.fake.posts) == 2


def test_expired_access_and_refresh_tokens_when_publishing_then_a_new_session(bluesky: Platform) -> None:
    publisher = bluesky.publisher()
    publisher.publish(bluesky.credentials, outgoing())
    bluesky.fake.expire_access_tokens()
    bluesky.fake.expire_refresh_tokens()
    publisher.publish(bluesky.credentials, outgoing())
    assert len(bluesky.fake.seen("POST", "*createSession")) == 2
    assert len(bluesky.fake.posts) == 2


def test_revoked_session_when_publishing_then_a_new_session(bluesky: Platform) -> None:
    publisher = bluesky.publisher()
    publisher.publish(bluesky.credentials, outgoing())
    bluesky.fake.revoke_sessions()
    publisher.publish(bluesky.credentials, outgoing())
    assert len(bluesky.fake.seen("POST", "*createSession")) == 2
    assert len(bluesky.fake.posts) == 2


def test_post_with_images_when_published_then_raw_blob_uploads_embedded_as_images(bluesky: Platform) -> None:
    bluesky.publisher().publish(bluesky.credentials, outgoing("Two.", media=(image("a.png"), image("b.png", (6, 2)))))
    uploads = bluesky.fake.seen("POST", "*uploadBlob")
    assert [u.body for u in uploads] == [tiny_png(4, 3), tiny_png(6, 2)]
    assert all(u.headers["content-type"] == "image/png" for u in uploads)
    embed = bluesky.fake.posts[0]["record"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in embed["images"]] == ["", ""]
    assert [i["image"]["ref"]["$link"] for i in embed["images"]] == list(bluesky.fake.blobs)


def test_video_when_published_then_unsupported_media_without_a_request(bluesky: Platform) -> None:
    video = Attachment(content=tiny_mp4(), mime="video/mp4", url="https://media.example.com/v.mp4", filename="v.mp4")
    with pytest.raises(PublishError) as caught:
        bluesky.publisher().publish(bluesky.credentials, outgoing(media=(video,)))
    assert caught.value.code == "unsupported_media"
    assert bluesky.fake.requests == []


def test_text_with_links_and_hashtags_when_published_then_facets_over_utf8_byte_ranges(bluesky: Platform) -> None:
    text = "Café ☕ at https://example.com/bottle. #hydrate #2024 #cold!"
    bluesky.publisher().publish(bluesky.credentials, outgoing(text))
    found = bluesky.fake.posts[0]["record"]["facets"]
    encoded = text.encode()
    spans = [(encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"][0]) for f in found]
    assert spans == [
        ("https://example.com/bottle", {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/bottle"}),
        ("#hydrate", {"$type": "app.bsky.richtext.facet#tag", "tag": "hydrate"}),
        ("#cold", {"$type": "app.bsky.richtext.facet#tag", "tag": "cold"}),
    ]


def test_plain_text_when_faceted_then_no_facets() -> None:
    assert facets("Cold water, all day. No links here #") == []


def test_record_already_created_when_publishing_again_then_the_existing_post_and_still_one(bluesky: Platform) -> None:
    publisher = bluesky.publisher()
    post = outgoing()
    first = publisher.publish(bluesky.credentials, post)
    again = publisher.publish(bluesky.credentials, post)
    assert again == first
    assert len(bluesky.fake.posts) == 1
    assert len(bluesky.fake.seen("GET", "*getRecord")) == 1


def test_post_never_created_when_reconciled_then_get_record_answers_none(bluesky: Platform) -> None:
    post = outgoing()
    assert bluesky.publisher().find(bluesky.credentials, post) is None
    (request,) = bluesky.fake.seen("GET", "*getRecord")
    assert request.query == {"repo": bluesky.fake.did, "collection": "app.bsky.feed.post", "rkey": record_key(post.idempotency_key)}


def test_published_post_when_deleted_then_delete_record_of_its_key(bluesky: Platform) -> None:
    publisher = bluesky.publisher()
    post = outgoing()
    receipt = publisher.publish(bluesky.credentials, post)
    publisher.delete(bluesky.credentials, receipt)
    (request,) = bluesky.fake.seen("POST", "*deleteRecord")
    assert request.json() == {"repo": bluesky.fake.did, "collection": "app.bsky.feed.post", "rkey": record_key(post.idempotency_key)}


def test_receipt_of_another_kind_when_deleted_then_provider_rejected_without_a_request(bluesky: Platform) -> None:
    with pytest.raises(PublishError) as caught:
        bluesky.publisher().delete(bluesky.credentials, Receipt(provider_post_id="at://did:plc:x/app.bsky.feed.like/3abc"))
    assert caught.value.code == "provider_rejected"
    assert bluesky.fake.requests == []
