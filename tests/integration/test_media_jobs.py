"""Image and video jobs on real PostgreSQL: outputs kept one by one, partial results, cancel and expiry, each refunded right."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from adapters.bootstrap import Container
from adapters.copy_local import LocalCopyProvider
from adapters.generation_worker import GenerationWorker
from adapters.image_local import LocalImageMaker
from adapters.media import sniff
from application.ports import ImageBrief, MediaFile, ProviderError, VideoBrief
from domain.generation_job import GenerationJob
from tests.conftest import ManualClock, catch_up_all

IMAGES: dict[str, Any] = {"prompt": "A brass desk lamp on walnut", "style": "minimal", "aspectRatio": "4:5", "count": 3}


class ScriptedImages:
    """Real local images, except where the script says an output fails (or waits to be released)."""

    def __init__(self, failures: dict[int, list[ProviderError]] | None = None, hold_at: int | None = None) -> None:
        self.failures = failures or {}
        self.hold_at = hold_at
        self.reached = threading.Event()
        self.release = threading.Event()
        self.calls: list[int] = []

    def make(self, brief: ImageBrief, index: int) -> MediaFile:
        self.calls.append(index)
        if index == self.hold_at:
            self.reached.set()
            self.release.wait(10)
        if self.failures.get(index):
            raise self.failures[index].pop(0)
        return LocalImageMaker().make(brief, index)


class NoVideos:
    def make(self, brief: VideoBrief) -> MediaFile:
        raise AssertionError("no video in these tests")


def worker(container: Container, images: ScriptedImages) -> GenerationWorker:
    return GenerationWorker(container.app, LocalCopyProvider(), images, NoVideos(), "test-worker")


def image_job(container: Container) -> tuple[Any, GenerationJob]:
    workspace = container.app.create_workspace("Acme")[0]
    return workspace, container.app.request_job(workspace.id, "image", IMAGES, outputs=3).job


def test_image_job_keeps_each_output_as_a_stored_png_of_the_requested_size(container: Container) -> None:
    workspace, job = image_job(container)

    worker(container, ScriptedImages()).run(job.id)

    done = container.app.get_job(workspace.id, job.id)
    assert (done.status, done.produced, done.credits_consumed) == ("completed", 3, 9)
    for summary in done.assets:
        asset = container.app.get_asset(workspace.id, summary["id"])
        content = container.media_store.path(asset.storage_key).read_bytes()
        assert sniff(content) == ("image/png", 1080, 1350) == (asset.mime, asset.width, asset.height)
        assert asset.job_id == job.id and asset.size == len(content)


def test_one_output_failing_for_good_ends_partial_and_refunds_the_missing_image(container: Container) -> None:
    workspace, job = image_job(container)
    images = ScriptedImages(failures={1: [ProviderError("content_policy", "refused", retryable=False)]})

    worker(container, images).run(job.id)

    done = container.app.get_job(workspace.id, job.id)
    assert (done.status, done.produced, done.credits_refunded, done.credits_consumed) == ("partial", 2, 3, 6)
    assert done.error == {"code": "content_policy", "message": "refused"}
    assert container.app.credit_account(workspace.id).balance == 50 - 9 + 3


def test_retryable_failure_requeues_and_the_next_attempt_makes_only_what_is_missing(container: Container) -> None:
    workspace, job = image_job(container)
    images = ScriptedImages(failures={1: [ProviderError("rate_limited", "slow down", retryable=True)]})
    runner = worker(container, images)

    runner.run(job.id)
    runner.run(job.id)

    done = container.app.get_job(workspace.id, job.id)
    assert (done.status, done.attempts, done.produced) == ("completed", 2, 3)
    assert images.calls == [0, 1, 1, 2]
    assert container.app.credit_account(workspace.id).balance == 50 - 9


def test_cancel_while_processing_stops_at_the_next_output_and_refunds_what_was_not_made(container: Container) -> None:
    workspace, job = image_job(container)
    images = ScriptedImages(hold_at=1)
    running = threading.Thread(target=worker(container, images).run, args=(job.id,))
    running.start()
    images.reached.wait(10)

    canceled = container.app.cancel_job(workspace.id, job.id)
    images.release.set()
    running.join(10)

    done = container.app.get_job(workspace.id, job.id)
    assert canceled.status == done.status == "canceled"
    assert (done.produced, done.credits_refunded) == (1, 6)
    assert container.app.credit_account(workspace.id).balance == 50 - 9 + 6
    assert [type(e).__name__ for e in container.app.events.get(job.id)][-1] == "Canceled"


def test_job_with_no_progress_before_its_deadline_expires_and_is_refunded(make_container) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    container: Container = make_container(clock=clock, job_deadline_seconds=600)
    workspace, job = image_job(container)
    catch_up_all(container)
    clock.current = job.last_progress_at  # events carry the wall clock's time, not the manual clock's

    clock.advance(seconds=599)
    container.sweep_once()
    assert container.app.get_job(workspace.id, job.id).status == "queued"
    clock.advance(seconds=2)
    catch_up_all(container)
    container.sweep_once()

    done = container.app.get_job(workspace.id, job.id)
    assert (done.status, done.credits_refunded) == ("expired", 9)
    assert container.app.credit_account(workspace.id).balance == 50
    assert not container.app.expire_job(job.id, timedelta(seconds=600))
