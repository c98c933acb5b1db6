"""Domain errors: every business rule that says no raises one of these."""

from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, object]:
        return {}


class NotFound(DomainError):
    code = "not_found"


class InvalidState(DomainError):
    code = "invalid_state"


class InsufficientCredits(DomainError):
    code = "insufficient_credits"

    def __init__(self, required: int, available: int) -> None:
        super().__init__(f"This needs {required} credits; {available} available.")
        self.required = required
        self.available = available

    def extra(self) -> dict[str, object]:
        return {"required": self.required, "available": self.available}


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class InvalidAmount(DomainError):
    code = "invalid_amount"


class UnknownProvider(DomainError):
    code = "unknown_provider"


class InvalidTime(DomainError):
    code = "invalid_time"


class ScheduleInvalid(DomainError):
    """A schedule envelope with problems: each names the JSON path of what is wrong."""

    code = "validation_error"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path'] or 'body'}: {e['message']}" for e in errors))
        self.errors = errors

    def extra(self) -> dict[str, object]:
        return {"errors": self.errors}


class OAuthStateInvalid(DomainError):
    """An OAuth callback whose state is not the one this connection's authorization was started with."""

    code = "oauth_state_invalid"


class OAuthStateExpired(OAuthStateInvalid):
    code = "oauth_state_expired"


class MissingCredentials(DomainError):
    code = "missing_credentials"


class PostNotDue(InvalidState):
    pass


class AttemptInFlight(InvalidState):
    """A publish attempt was started and never finished: its outcome is unknown, so it is never started again."""


class NotCurrentAttempt(InvalidState):
    pass
