"""Provider fakes, one per test, and outbound options short enough for tests (loopback allowed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.outbound_http import OutboundOptions
from tests.fakes import FakeFal, FakeHeyGen, FakeOpenAI

ATTEMPTS = 3


def fast_options(**overrides: object) -> OutboundOptions:
    values: dict[str, object] = {
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "attempts": ATTEMPTS,
        "backoff": 0.01,
        "max_backoff": 0.05,
        "retry_after_cap": 5.0,
        "allow_private": True,
        **overrides,
    }
    return OutboundOptions(**values)  # type: ignore[arg-type]


@pytest.fixture
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fal_fake() -> Iterator[FakeFal]:
    with FakeFal() as fake:
        yield fake


@pytest.fixture
def heygen_fake() -> Iterator[FakeHeyGen]:
    with FakeHeyGen() as fake:
        yield fake
