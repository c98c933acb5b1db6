"""Domain errors as problem+json: the status, the code, and what a client needs to act on them."""

from __future__ import annotations

import msgspec

from api.errors import domain_error
from application.group_commit import Busy
from domain.errors import InsufficientCredits


def test_a_full_write_queue_is_a_503_busy_that_tells_the_client_when_to_try_again() -> None:
    response = domain_error(None, Busy("Too many of this workspace's job requests are waiting to be written."))  # type: ignore[arg-type]

    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert msgspec.json.decode(response.content)["code"] == "busy"


def test_a_rule_that_says_no_is_not_worth_retrying_soon() -> None:
    response = domain_error(None, InsufficientCredits(required=5, available=2))  # type: ignore[arg-type]

    assert response.status_code == 402 and "Retry-After" not in response.headers
    assert msgspec.json.decode(response.content) | {"type": ""} == {
        "type": "",
        "title": "Insufficient credits",
        "status": 402,
        "detail": "This needs 5 credits; 2 available.",
        "code": "insufficient_credits",
        "required": 5,
        "available": 2,
    }
