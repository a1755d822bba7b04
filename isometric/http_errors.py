"""Which IsometricError a failed exchange with Isometric is, from its response or its exception."""

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from isometric.errors import (
    AuthenticationFailed,
    Conflict,
    FieldError,
    InvalidCursor,
    IsometricError,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)


def response_error(
    what: str, response: requests.Response, secrets: Sequence[str]
) -> IsometricError:
    """The error for a response outside 2xx. `what` names the request, e.g. "GET /organisation";
    any of `secrets` the server echoed back is blanked out."""
    status = response.status_code
    body = _body(response, secrets)
    detail = _detail(body)
    if status == 422:
        return _validation_error(what, _field_errors(body))
    if status in (401, 403):
        return AuthenticationFailed(f"{what}: authentication failed ({status}){detail}", status)
    if status == 404:
        return NotFound(f"{what}: not found (404){detail}", status)
    if status == 409:
        return Conflict(f"{what}: supplier_reference_id already exists (409){detail}", status)
    if status == 429:
        retry_after = _retry_after(response)
        when = "" if retry_after is None else f", retry after {retry_after:.0f} s"
        return RateLimited(f"{what}: rate limited (429){when}", retry_after)
    if status >= 500:
        return ServerError(f"{what}: server error ({status})", status, _retry_after(response))
    return IsometricError(f"{what}: unexpected HTTP status {status}{detail}", status)


def transport_error(what: str, exc: requests.RequestException) -> TransportError:
    """The error for a request that got no response, saying whether Isometric may have got it."""
    if isinstance(exc, requests.ConnectTimeout):
        return TransportError(
            f"{what}: could not connect in time", may_have_reached_server=False, timed_out=True
        )
    if _connection_refused(exc):
        return TransportError(f"{what}: could not connect", may_have_reached_server=False)
    if isinstance(exc, requests.ReadTimeout):
        return TransportError(
            f"{what}: no answer in time", may_have_reached_server=True, timed_out=True
        )
    return TransportError(f"{what}: the connection broke", may_have_reached_server=True)


def _connection_refused(exc: requests.RequestException) -> bool:
    """True when no connection was made: refused, unreachable, or the name did not resolve."""
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)


def _detail(body: object) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    return f": {detail[:200]}" if isinstance(detail, str) else ""


def _field_errors(body: object) -> list[FieldError]:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return [FieldError(loc=(), msg=detail, type="")]
    if not isinstance(detail, list):
        return []
    return [
        FieldError(
            loc=tuple(part for part in item.get("loc") or () if isinstance(part, str | int)),
            msg=str(item.get("msg", "")),
            type=str(item.get("type", "")),
        )
        for item in detail
        if isinstance(item, dict)
    ]


def _validation_error(what: str, errors: list[FieldError]) -> IsometricError:
    if any(_is_duplicate_reference(error) for error in errors):
        return Conflict(f"{what}: supplier_reference_id already exists (422)", 422)
    message = f"{what} was refused (422): " + "; ".join(str(error) for error in errors)
    if any(error.loc in (("query", "after"), ("query", "before")) for error in errors):
        return InvalidCursor(message, errors)
    return ValidationFailed(message, errors)


def _is_duplicate_reference(error: FieldError) -> bool:
    return (
        bool(error.loc)
        and error.loc[-1] == "supplier_reference_id"
        and "already exists" in error.msg.lower()
    )


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds; the header may hold seconds or an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body(response: requests.Response, secrets: Sequence[str]) -> object:
    text = response.text
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    try:
        return json.loads(text)
    except ValueError:
        return None
