"""Group commit when the API process is SIGKILLed under load: every job request either committed or was
answered with an error, never both; clients that retry with their Idempotency-Key get one job and one
charge per key, and the ledger matches the answers to the credit."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from adapters.embedded import EmbeddedBroker, free_port
from tests.conftest import System, settings_for, wait_for

CALLERS = 16
REQUESTS_EACH = 10  # with the grants, the ledger fits in one page of 200
CREDITS = 10_000
COPY_JOB = {"type": "copy", "input": {"product": {"name": "Lamp"}, "count": 1}}


@pytest.fixture(scope="module")
def killable_system(new_database: Callable[[], str], broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System(settings_for(new_database(), broker, port=free_port(), db_pool_size=20), tmp_path_factory.mktemp("killed"))
    yield running
    running.close()


class Caller:
    """Asks for jobs one after another, each under its own key, retrying a request until it has an answer
    that is not a server error, as a client of an API that may go away should."""

    def __init__(self, client: httpx.Client, index: int) -> None:
        self.client = client
        self.index = index
        self.answers: dict[str, list[int | str]] = {}  # key -> every attempt's status, or the error that had none
        self.jobs: dict[str, set[str]] = {}  # key -> the job ids its 2xx answers named

    def run(self) -> None:
        for n in range(REQUESTS_EACH):
            key = f"caller-{self.index}-{n}"
            attempts = self.answers.setdefault(key, [])
            while not attempts or not isinstance(attempts[-1], int) or attempts[-1] >= 500:
                try:
                    answer = self.client.post("/v1/jobs", json=COPY_JOB, headers={"Idempotency-Key": key}, timeout=10)
                except httpx.TransportError as error:  # the process went away mid-request: no answer
                    attempts.append(type(error).__name__)
                    time.sleep(0.1)
                    continue
                attempts.append(answer.status_code)
                if answer.status_code < 300:
                    self.jobs.setdefault(key, set()).add(answer.json()["jobId"])


def debit_rows(client: httpx.Client) -> list[dict]:  # type: ignore[type-arg]
    return [t for t in client.get("/v1/credits/transactions", params={"limit": 200}).json()["transactions"] if t["type"] == "debit"]


def test_api_killed_mid_batch_when_callers_retry_then_each_key_has_one_job_one_charge_and_no_error_committed(
    killable_system: System,
) -> None:
    client = killable_system.workspace()
    killable_system.admin.post(f"/v1/admin/workspaces/{client.workspace_id}/credits", json={"amount": CREDITS, "reference": "load"})  # type: ignore[attr-defined]
    before = client.get("/v1/credits").json()["balance"]
    callers = [Caller(client, i) for i in range(CALLERS)]
    threads = [threading.Thread(target=caller.run) for caller in callers]
    for thread in threads:
        thread.start()
    wait_for(lambda: sum(len(c.jobs) for c in callers) >= CALLERS, timeout=30)  # under way: batches in flight
    os.kill(killable_system.service_pid("api"), signal.SIGKILL)  # `up` starts another
    for thread in threads:
        thread.join(timeout=120)

    answers = {key: attempts for caller in callers for key, attempts in caller.answers.items()}
    jobs = {key: ids for caller in callers for key, ids in caller.jobs.items()}
    assert len(answers) == CALLERS * REQUESTS_EACH and all(isinstance(a[-1], int) and a[-1] < 300 for a in answers.values())
    assert any(isinstance(a, str) for attempts in answers.values() for a in attempts)  # the kill did cut requests off
    assert all(len(ids) == 1 for ids in jobs.values())  # a key's answers all name one job
    # An error answer means nothing was committed: after only error answers, the key's last attempt made the
    # job (202) rather than finding it (200). (A request cut off without an answer may have committed.)
    for attempts in answers.values():
        if len(attempts) > 1 and all(isinstance(a, int) for a in attempts[:-1]):
            assert attempts[-1] == 202, attempts
    debits = wait_for(lambda: len(rows := debit_rows(client)) >= len(jobs) and rows)
    assert sorted(d["jobId"] for d in debits) == sorted(next(iter(ids)) for ids in jobs.values())  # type: ignore[union-attr]
    assert client.get("/v1/credits").json()["balance"] == before - sum(d["amount"] for d in debits)  # type: ignore[union-attr]
