"""What can go wrong when talking to Isometric, as one hierarchy the sync service can act on.

Every error carries the HTTP status when there was a response. Messages never contain credentials.
"""

from dataclasses import dataclass


class IsometricError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FieldError:
    """One entry of a FastAPI 422 body: where (e.g. ("body", "mass", "unit")) and what."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.loc) or "request"
        return f"{where}: {self.msg}"


class ValidationFailed(IsometricError):
    """422: Isometric refused the request; resending it unchanged will not help."""

    def __init__(self, message: str, field_errors: list[FieldError], status: int = 422) -> None:
        super().__init__(message, status)
        self.field_errors = field_errors


class InvalidCursor(ValidationFailed):
    """422 on `after` or `before`: the cursor is malformed, tampered with or no longer valid."""


class AuthenticationFailed(IsometricError):
    """401 or 403: the client secret or access token is missing, wrong, revoked or expired."""


class NotFound(IsometricError):
    """404."""


class Conflict(IsometricError):
    """A batch with this supplier_reference_id already exists (409, or 422 naming the field).

    The earlier attempt may well have been ours: look the batch up rather than report a failure.
    """


class RateLimited(IsometricError):
    """429. `retry_after` is in seconds, or None when the server did not say."""

    def __init__(self, message: str, retry_after: float | None, status: int | None = 429) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class NotYourTurn(RateLimited):
    """Not sent: the organisation's requests are paced (client.Pace), and its next turn is
    further off than a caller should wait for. `retry_after`: when it comes."""

    retry_after: float

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"Not sent: the account's next turn to call Isometric is in {retry_after:.0f} s "
            "(its requests are paced to Isometric's rate limit)",
            retry_after,
            status=None,
        )


class ServerError(IsometricError):
    """5xx. A 503 often says when to come back, so `retry_after` is kept as for 429."""

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class TransportError(IsometricError):
    """No usable response. `may_have_reached_server` is False only when the request surely was
    not sent (connection refused, DNS failure, connect timeout); a POST that fails otherwise may
    have been stored. `timed_out` tells a slow server from one that cannot be reached."""

    def __init__(
        self, message: str, may_have_reached_server: bool, timed_out: bool = False
    ) -> None:
        super().__init__(message)
        self.may_have_reached_server = may_have_reached_server
        self.timed_out = timed_out


class MalformedResponse(IsometricError):
    """The response body is not what the contract describes."""


class RepeatedCursor(IsometricError):
    """The server handed back a cursor it had already given: following it would loop forever."""
