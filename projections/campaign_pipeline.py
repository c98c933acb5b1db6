"""The campaign pipeline: a process manager that follows the event log and moves each campaign on.

On `Created` it has the product analysed, on `ProductAnalyzed` it requests the generation jobs (all in
one save with the debits), on a campaign job's end it takes the outputs into the campaign (which becomes
ready for approval, approved if it asked for that, or failed), on `Deleted` it cancels the unfinished
jobs, and on its run's end it completes the campaign.

It commits its tracking position after a batch's commands, so a crash re-handles the batch: every
command is idempotent by the campaign's state and by deterministic idempotency keys, which is what
makes that harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore

from application.campaigns import Campaigns
from application.metadata import metadata
from domain.campaign import Campaign
from domain.generation_job import GenerationJob
from domain.run import Run
from projections.engine import Batch, Event, TrackedConsumer

Step = tuple[Callable[[UUID], Any], UUID]


def step_for(campaigns: Campaigns, event: Event, campaign_jobs: Container[UUID]) -> Step | None:
    """The command an event calls for, if any; every other event (and the end of a job that is not one of
    `campaign_jobs`) is ignored on purpose."""
    match event:
        case Campaign.Created():
            return campaigns.analyze, event.originator_id
        case Campaign.ProductAnalyzed():
            return campaigns.request_generation, event.originator_id
        case GenerationJob.Ended() if event.originator_id in campaign_jobs:
            return campaigns.job_ended, event.originator_id
        case Campaign.Deleted():
            return campaigns.cancel_jobs, event.originator_id
        case Campaign.PublishingScheduled():
            return campaigns.publishing_settled, event.originator_id
        case Run.Completed() | Run.PartiallyFailed() | Run.Published():
            return campaigns.run_changed, event.originator_id
    return None


class CampaignPipeline(TrackedConsumer):
    def __init__(self, datastore: PostgresDatastore, campaigns: Campaigns, application_name: str, actor: str = "campaigns") -> None:
        super().__init__(datastore, "campaign_pipeline", application_name)
        self.campaigns = campaigns
        self.actor = actor

    def react(self, batch: Batch) -> int:
        """Runs the batch's commands; returns how many it ran."""
        ran = 0
        campaign_jobs = self.campaigns.campaign_jobs({e.originator_id for _, e in batch if isinstance(e, GenerationJob.Ended)})
        with metadata(actor=f"campaigns:{self.actor}"):
            for _, event in batch:
                step = step_for(self.campaigns, event, campaign_jobs)
                if step is not None:
                    command, aggregate_id = step
                    command(aggregate_id)
                    ran += 1
        return ran

    def record(self, position: int) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            self._insert_tracking(cursor, Tracking(self.application_name, position))  # type: ignore[arg-type]

    def handle(self, batch: Batch) -> None:
        self.react(batch)
        self.record(batch[-1][0])
