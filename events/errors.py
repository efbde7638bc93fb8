"""Domain errors: each carries the contract's error code; the API maps kind to status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, retry_after_s: int | None = None,
                 **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        # Seconds the client should wait before trying again: sent as Retry-After (429, 503).
        self.retry_after_s = retry_after_s


class Invalid(DomainError):
    status = 422


def all_problems(problems: list[Invalid]) -> Invalid:
    """Several problems as one 422: the first's code, message and field, and every one in
    `fields` ([{field, code, message}]), so a form can show them all at once."""
    first = problems[0]
    listed = [{"field": p.detail.get("field", ""), "code": p.code, "message": p.message}
              for p in problems]
    return Invalid(first.code, first.message, **{**first.detail, "fields": listed})


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Unauthenticated(DomainError):
    status = 401


class Conflict(DomainError):
    status = 409


class Throttled(DomainError):
    status = 429


class Busy(DomainError):
    """A lock or a resource was not had in time: the client may try again (with Retry-After)."""

    status = 503
