"""The one place where errors become application/problem+json answers."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.types import ExceptionHandlersMap

from adapters.lemonsqueezy import InvalidSignature, MalformedNotice
from application.group_commit import Busy
from application.pressroom import Conflict, Unauthenticated
from application.publishing import ProviderRefused
from domain.asset import MediaTooLarge, UnsupportedMedia
from domain.errors import DomainError, IdempotencyKeyReused, InsufficientCredits, InvalidState, NotFound
from projections.paging import InvalidCursor

log = structlog.get_logger()

PROBLEM = "application/problem+json"

STATUS_OF: dict[type[Exception], int] = {
    NotFound: 404,
    InvalidState: 409,
    UnsupportedMedia: 415,
    MediaTooLarge: 413,
    Conflict: 409,
    InsufficientCredits: 402,
    IdempotencyKeyReused: 422,
    Unauthenticated: 401,
    ProviderRefused: 502,
    Busy: 503,
    DomainError: 422,
}

# Errors a client should simply send again, and after how many seconds: the writer works through a full queue
# within about a second.
RETRY_AFTER_SECONDS: dict[type[Exception], int] = {Busy: 1}


class RequestInvalid(Exception):
    """The request is malformed: each error names the path of what is wrong."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def at(cls, path: str, message: str) -> RequestInvalid:
        return cls([{"path": path, "message": message}])

    @classmethod
    def from_msgspec(cls, error: msgspec.ValidationError, root: str) -> RequestInvalid:
        return cls([error_at(root, str(error))])


_AT_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_FIELD = re.compile(r"field `(?P<field>[^`]+)`")


def error_at(root: str, message: str) -> dict[str, str]:
    """Turns msgspec's "Expected `int` <= 10 - at `$.count`" into {path: "root.count", message}."""
    path = root
    if match := _AT_PATH.search(message):
        path, message = root + match.group("path").replace("[", ".").replace("]", ""), message[: match.start()]
    if field := _FIELD.search(message):
        path = f"{path}.{field.group('field')}"
    return {"path": path.strip("."), "message": message}


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response[bytes]:
    body = {
        "type": f"https://pressroom.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return Response(msgspec.json.encode(body), status_code=status, media_type=PROBLEM)


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def domain_error(_: Request[Any, Any, Any], error: DomainError) -> Response[bytes]:
    status = next(status for cls, status in STATUS_OF.items() if isinstance(error, cls))
    response = problem(status, error.code, _title(error.code), error.detail, **error.extra())
    if (seconds := RETRY_AFTER_SECONDS.get(type(error))) is not None:
        response.headers["Retry-After"] = str(seconds)
    return response


def request_invalid(_: Request[Any, Any, Any], error: RequestInvalid) -> Response[bytes]:
    return problem(422, "validation_error", "Validation error", str(error), errors=error.errors)


def litestar_validation(_: Request[Any, Any, Any], error: ValidationException) -> Response[bytes]:
    errors = [
        error_at("" if item.get("key") == "data" else str(item.get("key", "")), str(item.get("message", "")))
        for item in (error.extra if isinstance(error.extra, list) else [])
    ] or [{"path": "", "message": error.detail}]
    detail = "; ".join(f"{e['path'] or 'body'}: {e['message']}" for e in errors)
    return problem(422, "validation_error", "Validation error", detail, errors=errors)


def invalid_signature(_: Request[Any, Any, Any], error: InvalidSignature) -> Response[bytes]:
    return problem(401, "invalid_signature", "Invalid signature", str(error))


def malformed_notice(_: Request[Any, Any, Any], error: MalformedNotice) -> Response[bytes]:
    return problem(422, "validation_error", "Validation error", str(error), errors=[{"path": "", "message": str(error)}])


def invalid_cursor(_: Request[Any, Any, Any], error: InvalidCursor) -> Response[bytes]:
    return problem(422, "validation_error", "Validation error", str(error), errors=[{"path": "cursor", "message": str(error)}])


def http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    if error.status_code == 400:
        # Litestar answers 400 to a body it cannot parse; to clients that is one more invalid request.
        return problem(422, "validation_error", "Validation error", error.detail, errors=[{"path": "", "message": error.detail}])
    code = {
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        429: "rate_limited",
        503: "unavailable",
    }.get(error.status_code, "http_error")
    headers = error.headers or {}
    response = problem(error.status_code, code, _title(code), error.detail)
    response.headers.update(headers)
    return response


def unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    log.exception("unhandled_error", path=request.url.path, error=repr(error))
    return problem(500, "internal_error", "Internal error", "Something went wrong on our side; it has been logged.")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    RequestInvalid: request_invalid,
    ValidationException: litestar_validation,
    InvalidCursor: invalid_cursor,
    InvalidSignature: invalid_signature,
    MalformedNotice: malformed_notice,
    NotAuthorizedException: http_error,
    HTTPException: http_error,
    Exception: unexpected,
}
