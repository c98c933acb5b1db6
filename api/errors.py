"""The one place where errors become application/problem+json answers."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException

from application.pressroom import Conflict, Unauthenticated
from domain.errors import DomainError, IdempotencyKeyReused, InsufficientCredits, InvalidState, NotFound
from projections.paging import InvalidCursor

log = structlog.get_logger()

PROBLEM = "application/problem+json"

STATUS_OF: dict[type[Exception], int] = {
    NotFound: 404,
    InvalidState: 409,
    Conflict: 409,
    InsufficientCredits: 402,
    IdempotencyKeyReused: 422,
    Unauthenticated: 401,
    DomainError: 422,
}


class RequestInvalid(Exception):
    """The request is malformed: each error names the path of what is wrong."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def at(cls, path: str, message: str) -> RequestInvalid:
        return cls([{"path": path, "message": message}])

    @classmethod
    def from_msgspec(cls, error: msgspec.ValidationError | msgspec.DecodeError, root: str) -> RequestInvalid:
        message = str(error)
        match = re.search(r" - at `\$(.*)`$", message)
        path = root + (match.group(1) if match else "")
        return cls.at(path.lstrip("."), message[: match.start()] if match else message)


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response[bytes]:
    body = {"type": f"https://pressroom.dev/problems/{code}", "title": title, "status": status, "detail": detail, "code": code, **extra}
    return Response(msgspec.json.encode(body), status_code=status, media_type=PROBLEM)


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def domain_error(_: Request[Any, Any, Any], error: DomainError) -> Response[bytes]:
    status = next(status for cls, status in STATUS_OF.items() if isinstance(error, cls))
    return problem(status, error.code, _title(error.code), error.detail, **error.extra())


def request_invalid(_: Request[Any, Any, Any], error: RequestInvalid) -> Response[bytes]:
    return problem(422, "validation_error", "Validation error", str(error), errors=error.errors)


def litestar_validation(_: Request[Any, Any, Any], error: ValidationException) -> Response[bytes]:
    errors = [
        {"path": str(item.get("key") or item.get("source") or "body"), "message": str(item.get("message", ""))}
        for item in (error.extra if isinstance(error.extra, list) else [])
    ] or [{"path": "body", "message": error.detail}]
    return problem(422, "validation_error", "Validation error", error.detail, errors=errors)


def invalid_cursor(_: Request[Any, Any, Any], error: InvalidCursor) -> Response[bytes]:
    return problem(422, "validation_error", "Validation error", str(error), errors=[{"path": "cursor", "message": str(error)}])


def http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    code = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
            429: "rate_limited", 503: "unavailable"}.get(error.status_code, "http_error")
    headers = error.headers or {}
    response = problem(error.status_code, code, _title(code), error.detail)
    response.headers.update(headers)
    return response


def unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.exception("unhandled_error", path=request.url.path, error=repr(error))
    return problem(500, "internal_error", "Internal error", "Something went wrong on our side; it has been logged.")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    DomainError: domain_error,
    RequestInvalid: request_invalid,
    ValidationException: litestar_validation,
    InvalidCursor: invalid_cursor,
    NotAuthorizedException: http_error,
    HTTPException: http_error,
    Exception: unexpected,
}
