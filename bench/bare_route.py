"""The HTTP floor of the write-path bench: a Litestar route that takes `POST /v1/jobs` with the same body schema and
answers the same `JobAccepted` JSON, with nothing behind it, served by uvicorn as the API is served
(`api.http_protocol.serve`). What wrk, the kernel, uvicorn and Litestar cost a request on this machine, measured
in the same run as Pressroom: the rest of a job request's cost is Pressroom's.

Run by bench/write_path.py as `python -m bench.bare_route --port N`."""

from __future__ import annotations

import argparse
from uuid import UUID

from litestar import Litestar, post
from litestar.params import JSONBody

from api.http_protocol import serve
from api.schemas import CreateJob, JobAccepted

ACCEPTED = JobAccepted(
    job_id=UUID(int=0), status="queued", credits_reserved=1, credits_remaining=0, poll_url=f"/v1/jobs/{UUID(int=0)}", duplicate=False
)


@post("/v1/jobs", status_code=202)
async def accept(data: JSONBody[CreateJob]) -> JobAccepted:
    return ACCEPTED


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_route", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    serve(Litestar([accept]), "127.0.0.1", parser.parse_args().port)


if __name__ == "__main__":
    main()
