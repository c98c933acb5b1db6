"""The campaigns row and stats: what `evolve` makes of a campaign's events, always agreeing with the aggregate."""

from __future__ import annotations

from functools import reduce
from typing import Any
from uuid import uuid4

from domain.campaign import Campaign, job_slots
from projections.campaigns import CampaignRow, evolve, stats_of


def history() -> tuple[Campaign, list[Any]]:
    campaign = Campaign.create(
        uuid4(),
        uuid4(),
        title="Lamp",
        product_url="https://shop.example/lamp",
        description=None,
        platforms=["x"],
        tone="bold",
        image_count=1,
        auto_approve=False,
    )
    events: list[Any] = list(campaign.collect_events())
    campaign.start_analysis()
    campaign.record_analysis(title="Lamp", description="Warm.")
    jobs = [{"id": uuid4(), "type": kind, "slot": slot} for kind, slot in job_slots(campaign)]
    campaign.request_generation(jobs)
    campaign.settle_job(jobs[0]["id"], "completed", [{"hook": "h", "body": "b", "cta": "c", "hashtags": []}], [])
    campaign.settle_job(jobs[1]["id"], "failed", [], [])
    campaign.approve()
    campaign.edit_variant(campaign.variants[0]["id"], hook="h2")
    campaign.approve()
    run_id = uuid4()
    campaign.schedule(run_id)
    events += campaign.collect_events()
    return campaign, events


def test_row_after_each_event_has_the_aggregates_status() -> None:
    campaign, events = history()
    replayed: Campaign | None = None
    row: CampaignRow | None = None
    for event in events:
        replayed = event.mutate(replayed)
        row = evolve(row, event)
        assert row is not None and replayed is not None and row.status == replayed.status

    assert row is not None and row.jobs == 2 and row.run_id == campaign.run_id and row.platforms == ["x"]


def test_row_ignores_events_of_other_aggregates_and_campaign_events_before_its_creation() -> None:
    _, events = history()

    assert evolve(None, events[1]) is None
    row = reduce(evolve, events[:1], None)
    assert evolve(row, object()) is row  # type: ignore[arg-type]


def test_stats_fold_statuses_and_leave_deleted_campaigns_out() -> None:
    stats = stats_of({"pending": 1, "generating": 2, "approved": 1, "awaiting_approval": 3, "completed": 4, "failed": 1, "deleted": 9})

    assert (stats.total, stats.in_progress, stats.awaiting_approval, stats.completed, stats.failed) == (12, 4, 3, 4, 1)
