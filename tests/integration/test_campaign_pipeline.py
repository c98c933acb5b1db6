"""The campaign process manager against real PostgreSQL: crashes at any point never request a job twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from uuid import UUID

import pytest

from adapters.bootstrap import Container
from adapters.copy_local import LocalCopyProvider
from adapters.generation_worker import GenerationWorker
from adapters.image_local import LocalImageMaker
from adapters.video_local import LocalVideoMaker
from domain.campaign import Campaign
from domain.generation_job import GenerationJob
from projections.campaign_pipeline import CampaignPipeline
from projections.engine import LogFollower, read_batch
from tests.fakes.product_site import ProductSite

PAGE = '<html><head><meta property="og:title" content="Trail Runner 3"><meta property="og:description" content="Grippy."></head></html>'


@pytest.fixture
def shop() -> Iterator[ProductSite]:
    with ProductSite() as site:
        site.page("/shoe", PAGE)
        yield site


def pipeline(container: Container) -> CampaignPipeline:
    return CampaignPipeline(container.datastore, container.campaigns, container.app.name)


def catch_up(container: Container, batch_size: int = 3) -> None:
    LogFollower(container.app, pipeline(container), database_url=container.database_url, batch_size=batch_size).catch_up()


def recorded(container: Container) -> Counter[str]:
    return Counter(type(event).__qualname__ for _, event in read_batch(container.app, after=None, limit=100_000))


def run_jobs(container: Container, campaign: Campaign) -> None:
    worker = GenerationWorker(container.app, LocalCopyProvider(), LocalImageMaker(), LocalVideoMaker(), "worker-1")
    for job_id in campaign.jobs:
        worker.run(job_id)


def new_campaign(container: Container, url: str, workspace_id: UUID | None = None, images: int = 1) -> Campaign:
    workspace_id = workspace_id or container.app.create_workspace("Acme")[0].id
    return container.campaigns.create(workspace_id, title="Trail", platforms=["x", "tiktok"], product_url=url, image_count=images)


def test_pipeline_killed_after_its_commands_and_before_its_position_requests_no_job_twice(container: Container, shop: ProductSite) -> None:
    created = new_campaign(container, shop.url + "/shoe")
    crashed = pipeline(container)
    everything = read_batch(container.app, after=None, limit=1000)

    crashed.react(everything)  # the commands ran; the process died before it recorded its position
    catch_up(container)  # a new process starts from the last recorded position (none) and sees it all again
    catch_up(container)

    campaign = container.campaigns.get(created.workspace_id, created.id)
    assert campaign.status == "generating" and campaign.product is not None and campaign.product["title"] == "Trail Runner 3"
    assert recorded(container)["GenerationJob.Requested"] == 3
    assert sorted(j["slot"] for j in campaign.jobs.values()) == ["copy:tiktok", "copy:x", "image"]
    assert container.app.credit_account(created.workspace_id).balance == 50 - 2 - 3


def test_pipeline_restarted_after_every_batch_completes_the_campaign_with_one_job_per_kind(container: Container, shop: ProductSite) -> None:
    created = new_campaign(container, shop.url + "/shoe")

    for _ in range(6):  # one batch of one event per process: each "restart" resumes from the recorded position
        follower = LogFollower(container.app, pipeline(container), database_url=container.database_url, batch_size=1)
        if batch := follower._next_batch():
            follower.consumer.handle(batch)
    catch_up(container)
    campaign = container.campaigns.get(created.workspace_id, created.id)
    run_jobs(container, campaign)
    ended = [(p, e) for p, e in read_batch(container.app, after=None, limit=1000) if isinstance(e, GenerationJob.Ended)]
    pipeline(container).react(ended)  # settles the jobs, then dies before recording
    catch_up(container, batch_size=1)

    campaign = container.campaigns.get(created.workspace_id, created.id)
    counts = recorded(container)
    assert campaign.status == "awaiting_approval"
    assert counts["GenerationJob.Requested"] == 3 and counts["Campaign.GenerationRequested"] == 1
    assert counts["Campaign.JobSettled"] == 3 and counts["Campaign.ReadyForApproval"] == 1
    assert len(campaign.variants) == 6 and len(campaign.assets) == 1


def test_a_workspace_that_spent_its_credits_before_generation_gets_no_job_and_a_failed_campaign(
    container: Container, shop: ProductSite
) -> None:
    workspace, _ = container.app.create_workspace("Acme")
    created = new_campaign(container, shop.url + "/shoe", workspace.id, images=4)  # 14 credits of 50
    container.app.request_job(workspace.id, "video", {"script": "Meet the Trail Runner 3 today."}, outputs=1)

    catch_up(container)

    campaign = container.campaigns.get(workspace.id, created.id)
    assert campaign.status == "failed" and campaign.failure is not None and campaign.failure.startswith("insufficient_credits")
    assert recorded(container)["GenerationJob.Requested"] == 1  # the video only
    assert container.app.credit_account(workspace.id).balance == 10


def test_deleted_campaign_whose_delete_crashed_before_canceling_gets_its_jobs_canceled_by_the_pipeline(
    container: Container, shop: ProductSite
) -> None:
    created = new_campaign(container, shop.url + "/shoe")
    catch_up(container)

    container.campaigns._mark_deleted(created.workspace_id, created.id)  # the API process died right after this
    catch_up(container)

    campaign = container.campaigns.get(created.workspace_id, created.id)
    jobs = [container.app.get_job(created.workspace_id, job_id) for job_id in campaign.jobs]
    assert campaign.status == "deleted" and {job.status for job in jobs} == {"canceled"}
    assert container.app.credit_account(created.workspace_id).balance == 50


def test_the_ends_of_a_campaigns_jobs_are_told_from_other_jobs_ending_in_the_same_batch(container: Container, shop: ProductSite) -> None:
    created = new_campaign(container, shop.url + "/shoe")
    catch_up(container)
    campaign = container.campaigns.get(created.workspace_id, created.id)
    brief = {"product": {"name": "Lamp"}, "platform": "x", "count": 1}
    others = [container.app.request_job(created.workspace_id, "copy", brief, outputs=1).job.id for _ in range(2)]
    run_jobs(container, campaign)
    worker = GenerationWorker(container.app, LocalCopyProvider(), LocalImageMaker(), LocalVideoMaker(), "worker-1")
    for job_id in others:
        worker.run(job_id)

    ended = {e.originator_id for _, e in read_batch(container.app, after=None, limit=1000) if isinstance(e, GenerationJob.Ended)}
    assert ended == {*campaign.jobs, *others}
    assert container.campaigns.campaign_jobs(ended) == set(campaign.jobs)
    catch_up(container, batch_size=1000)  # the campaign's job ends and the others' in one batch

    settled = container.campaigns.get(created.workspace_id, created.id)
    assert settled.status == "awaiting_approval" and recorded(container)["Campaign.JobSettled"] == 3
