"""Campaign: its pipeline statuses, approval bound to content, and what invalidates an approval."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.campaign import Campaign, CampaignInvalid, VariantNotFound, content_hash, copy_platform, job_slots, variant_id
from domain.errors import InvalidState

VARIANT = {"hook": "Hook", "body": "Body.", "cta": "Shop now", "hashtags": ["#lamp"]}
IMAGE = {"id": "00000000-0000-4000-8000-00000000000a", "type": "image", "mime": "image/png", "width": 1, "height": 1, "filename": "i.png"}


def new(platforms: list[str] | None = None, image_count: int = 1, auto_approve: bool = False) -> Campaign:
    campaign = Campaign.create(
        uuid4(),
        uuid4(),
        title="Lamp",
        product_url=None,
        description="Warm light.",
        platforms=platforms or ["x", "linkedin"],
        tone="professional",
        image_count=image_count,
        auto_approve=auto_approve,
    )
    campaign.collect_events()
    return campaign


def generating(**options: Any) -> tuple[Campaign, dict[str, UUID]]:
    campaign = new(**options)
    campaign.start_analysis()
    campaign.record_analysis(title="Lumen Lamp", description="Brass.", source=["opengraph"])
    slots = {slot: uuid4() for _, slot in job_slots(campaign)}
    campaign.request_generation([{"id": job_id, "type": slot.split(":")[0], "slot": slot} for slot, job_id in slots.items()])
    campaign.collect_events()
    return campaign, slots


def ready(**options: Any) -> tuple[Campaign, dict[str, UUID]]:
    campaign, slots = generating(**options)
    for slot, job_id in slots.items():
        if slot == "image":
            campaign.settle_job(job_id, "completed", [], [IMAGE])
        else:
            campaign.settle_job(job_id, "completed", [VARIANT, VARIANT], [])
    campaign.collect_events()
    return campaign, slots


def names(campaign: Campaign) -> list[str]:
    return [type(e).__name__ for e in campaign.collect_events()]


def test_new_campaign_is_pending_and_its_slots_are_a_copy_job_per_platform_and_the_images() -> None:
    campaign = new(["x", "instagram"], image_count=2)

    assert campaign.status == "pending"
    assert job_slots(campaign) == [("copy", "copy:x"), ("copy", "copy:instagram"), ("image", "image")]
    assert job_slots(new(image_count=0)) == [("copy", "copy:x"), ("copy", "copy:linkedin")]


@pytest.mark.parametrize(
    ("platforms", "images"),
    [([], 1), (["x", "x"], 1), (["x"], 5), (["x"], -1)],
)
def test_campaign_with_no_or_repeated_platforms_or_images_out_of_range_is_refused(platforms: list[str], images: int) -> None:
    with pytest.raises(CampaignInvalid):
        Campaign.create(
            uuid4(),
            uuid4(),
            title="t",
            product_url=None,
            description=None,
            platforms=platforms,
            tone="bold",
            image_count=images,
            auto_approve=False,
        )


def test_analysis_started_twice_records_once_and_after_analysis_it_is_not_started_again() -> None:
    campaign = new()

    assert campaign.start_analysis() and campaign.start_analysis()
    assert names(campaign) == ["AnalysisStarted"]
    assert campaign.record_analysis(title="", description="")
    assert not campaign.record_analysis(title="Other", description="")
    assert campaign.product is not None and campaign.product["title"] == "Lamp"  # falls back to the brief's title
    assert campaign.product["description"] == "Warm light."


def test_generation_requested_twice_is_refused() -> None:
    campaign, slots = generating()

    with pytest.raises(InvalidState):
        campaign.request_generation([{"id": uuid4(), "type": "copy", "slot": "copy:x"}])
    assert campaign.status == "generating" and set(campaign.jobs) == set(slots.values())


def test_campaign_when_every_job_settled_with_output_awaits_approval() -> None:
    campaign, slots = generating()

    campaign.settle_job(slots["copy:x"], "completed", [VARIANT], [])
    assert campaign.status == "generating"
    campaign.settle_job(slots["copy:linkedin"], "failed", [], [])
    campaign.settle_job(slots["image"], "partial", [], [IMAGE])

    assert campaign.status == "awaiting_approval"
    assert [v["platform"] for v in campaign.variants] == ["x"] and len(campaign.assets) == 1
    assert campaign.variants[0]["id"] == str(variant_id(slots["copy:x"], 0))


def test_campaign_when_every_job_failed_fails() -> None:
    campaign, slots = generating()

    for job_id in slots.values():
        campaign.settle_job(job_id, "failed", [], [])

    assert campaign.status == "failed" and campaign.failure == "Every generation job failed."


def test_a_job_settled_twice_or_unknown_is_taken_in_once() -> None:
    campaign, slots = generating()

    assert campaign.settle_job(slots["copy:x"], "completed", [VARIANT], [])
    assert not campaign.settle_job(slots["copy:x"], "completed", [VARIANT], [])
    assert not campaign.settle_job(uuid4(), "completed", [VARIANT], [])
    assert len(campaign.variants) == 1


def test_auto_approve_approves_as_soon_as_the_campaign_is_ready() -> None:
    campaign, _ = ready(auto_approve=True)

    assert campaign.status == "approved" and campaign.approved_hash == campaign.content_hash


def test_approve_binds_the_hash_of_the_content_and_only_from_awaiting_approval() -> None:
    campaign, _ = ready()

    campaign.approve()

    event = campaign.collect_events()[-1]
    assert isinstance(event, Campaign.Approved) and event.content_hash == campaign.content_hash
    assert sorted(event.variant_ids) == sorted(v["id"] for v in campaign.variants)
    with pytest.raises(InvalidState):
        campaign.approve()


def test_edit_after_approval_records_approval_invalidated_then_the_edit() -> None:
    campaign, _ = ready()
    campaign.approve()
    campaign.collect_events()
    approved_hash = campaign.approved_hash

    assert campaign.edit_variant(campaign.variants[0]["id"], hook="New hook")

    assert names(campaign) == ["ApprovalInvalidated", "VariantEdited"]
    assert campaign.status == "awaiting_approval" and campaign.approved_hash is None
    assert campaign.content_hash != approved_hash and campaign.variants[0]["edited"]


def test_an_edit_that_changes_nothing_records_nothing_and_keeps_the_approval() -> None:
    campaign, _ = ready()
    campaign.approve()
    campaign.collect_events()

    assert not campaign.edit_variant(campaign.variants[0]["id"], hook=VARIANT["hook"])
    assert names(campaign) == [] and campaign.status == "approved"


def test_editing_an_unknown_variant_or_a_campaign_still_generating_is_refused() -> None:
    campaign, _ = ready()
    with pytest.raises(VariantNotFound):
        campaign.edit_variant(uuid4(), hook="x")
    busy, _ = generating()
    with pytest.raises(InvalidState):
        busy.edit_variant(uuid4(), hook="x")


def test_regeneration_after_approval_invalidates_it_and_its_output_replaces_that_slot_only() -> None:
    campaign, slots = ready()
    campaign.approve()
    campaign.collect_events()
    new_job = uuid4()

    campaign.request_regeneration([{"id": new_job, "type": "copy", "slot": "copy:x"}])
    assert names(campaign) == ["ApprovalInvalidated", "RegenerationRequested"]
    assert campaign.status == "generating" and campaign.regenerations == 1
    campaign.settle_job(new_job, "completed", [VARIANT], [])

    assert campaign.status == "awaiting_approval"
    assert sorted(v["jobId"] for v in campaign.variants) == sorted([str(slots["copy:linkedin"])] * 2 + [str(new_job)])


def test_a_regeneration_that_makes_nothing_keeps_what_the_slot_had() -> None:
    campaign, _ = ready()
    before = list(campaign.variants)
    new_job = uuid4()

    campaign.request_regeneration([{"id": new_job, "type": "copy", "slot": "copy:x"}])
    campaign.settle_job(new_job, "failed", [], [])

    assert campaign.status == "awaiting_approval" and campaign.variants == before


def test_schedule_only_from_approved_and_complete_only_for_its_run() -> None:
    campaign, _ = ready()
    run_id = uuid4()
    with pytest.raises(InvalidState):
        campaign.schedule(run_id)
    campaign.approve()

    campaign.schedule(run_id)
    campaign.schedule(run_id)  # the same run again changes nothing

    assert campaign.status == "publishing" and names(campaign)[-1] == "PublishingScheduled"
    assert not campaign.complete(uuid4(), "completed")
    assert campaign.complete(run_id, "completed") and campaign.status == "completed"


def test_deleted_campaign_settles_nothing_and_deleting_again_records_nothing() -> None:
    campaign, slots = generating()

    assert campaign.delete()
    assert not campaign.delete()
    assert not campaign.settle_job(slots["image"], "canceled", [], [])
    assert campaign.unsettled_jobs and campaign.status == "deleted"
    with pytest.raises(InvalidState):
        campaign.approve()


def test_copy_platform_maps_social_platforms_to_the_ad_platforms_copy_jobs_know() -> None:
    assert [copy_platform(p) for p in ("instagram", "facebook", "x", "youtube", "bluesky")] == ["meta", "meta", "x", "google", "universal"]


words = st.text(max_size=20)
variants = st.lists(
    st.fixed_dictionaries(
        {"id": st.uuids().map(str), "platform": st.sampled_from(["x", "linkedin"]), "hook": words, "body": words, "cta": words},
    ).map(lambda v: {**v, "hashtags": ["#a"]}),
    max_size=6,
    unique_by=lambda v: v["id"],
)


@given(variants, st.randoms())
def test_content_hash_does_not_depend_on_order(found: list[dict[str, Any]], random: Any) -> None:
    shuffled = list(found)
    random.shuffle(shuffled)

    assert content_hash(found, [IMAGE]) == content_hash(shuffled, [IMAGE])


@given(variants.filter(bool), words)
def test_content_hash_changes_with_any_word_of_any_variant(found: list[dict[str, Any]], hook: str) -> None:
    changed = [{**found[0], "hook": found[0]["hook"] + hook + "!"}, *found[1:]]

    assert content_hash(found, []) != content_hash(changed, [])
    assert content_hash(found, []) != content_hash(found, [IMAGE])


@given(st.lists(st.sampled_from(["edit", "approve", "regenerate", "settle"]), max_size=12))
def test_an_approved_campaign_always_carries_the_hash_of_its_content(steps: list[str]) -> None:
    campaign, _ = ready()
    pending: list[UUID] = []
    for step in steps:
        try:
            if step == "edit" and campaign.variants:
                campaign.edit_variant(campaign.variants[0]["id"], hook=campaign.variants[0]["hook"] + "+")
            elif step == "approve":
                campaign.approve()
            elif step == "regenerate":
                pending.append(uuid4())
                campaign.request_regeneration([{"id": pending[-1], "type": "copy", "slot": "copy:x"}])
            elif step == "settle" and pending:
                campaign.settle_job(pending.pop(0), "completed", [VARIANT], [])
        except InvalidState:
            if step == "regenerate":
                pending.pop()
        if campaign.status == "approved":
            assert campaign.approved_hash == campaign.content_hash
