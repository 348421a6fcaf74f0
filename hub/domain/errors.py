"""The errors the core raises; each carries a stable code that the API turns into JSON."""

from __future__ import annotations


class DomainError(Exception):
    """Base: a message that says what happened, to what, and what to do."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidInput(DomainError):
    code = "invalid_input"


class Unauthorized(DomainError):
    """A request that does not prove who sent it (an authorization callback with a forged,
    expired or replayed state): 401, and nothing is stored."""

    code = "unauthorized"


class MarketplaceUnavailable(DomainError):
    """The marketplace could not be reached or answered an error while we waited on it."""

    code = "marketplace_unavailable"
