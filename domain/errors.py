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
