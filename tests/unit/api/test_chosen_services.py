"""`PRESSROOM_SERVICES`: which processes `pressroom up` starts."""

from __future__ import annotations

import pytest

from adapters.settings import Settings
from api.cli import SERVICES, chosen_services


def test_every_service_starts_when_none_is_named() -> None:
    assert chosen_services(Settings.from_env({})) == SERVICES


def test_only_the_named_services_start_each_once() -> None:
    settings = Settings.from_env({"PRESSROOM_SERVICES": " api, projections,api "})
    assert chosen_services(settings) == ("api", "projections")


@pytest.mark.parametrize("named", ["api,scheduler", ",", "API"])
def test_an_unknown_or_empty_list_stops_up_with_the_choices(named: str) -> None:
    with pytest.raises(SystemExit, match="choose among api, projections"):
        chosen_services(Settings.from_env({"PRESSROOM_SERVICES": named}))
