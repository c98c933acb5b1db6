import time

from tests.conftest import Background


def test_smoke(container, background: Background):
    background.start(container.run_projections)
    background.start(container.run_relay)
    background.start(container.run_generation_worker)
    ws, key = container.app.create_workspace("Acme")
    r = container.app.request_job(ws.id, "copy", {"product": {"name": "Lamp"}, "platform": "x", "format": "short",
                                                 "tone": "casual", "count": 2, "language": "en"}, 2)
    for _ in range(100):
        job = container.app.get_job(ws.id, r.job.id)
        if job.is_terminal:
            break
        time.sleep(0.1)
    print(job.status, job.variants)
    assert job.status == "completed"
