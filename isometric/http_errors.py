"""Which IsometricError a failed exchange with Isometric is, from its response or its exception.

Whatever the server sent is bounded here: JSON too deep to read is not JSON, Retry-After lies in
[0, MAX_RETRY_AFTER] seconds, and text taken from a body is shortened and has the credentials
blanked out (`redact`).
"""

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

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

# A server asking for more than an hour is treated as asking for an hour: callers combine this with
# their own backoff, and a batch must not be parked for years by one header.
MAX_RETRY_AFTER = 3600.0
# Any run of this many characters of a credential is blanked out, not only the whole credential.
REDACTED_SLICE = 8
MAX_DETAIL = 200


def json_body(content: bytes) -> object:
    """The JSON in `content`. ValueError when it is not JSON, or is nested too deep to read."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every span that matches REDACTED_SLICE characters of a secret (the whole of a
    shorter secret) replaced by "[redacted]", one marker per run of covered characters."""
    covered = [False] * len(text)
    for secret in secrets:
        size = min(REDACTED_SLICE, len(secret))
        slices = {secret[i : i + size] for i in range(len(secret) - size + 1)}
        for start in range(len(text) - size + 1):
            if text[start : start + size] in slices:
                covered[start : start + size] = [True] * size
    kept: list[str] = []
    for index, char in enumerate(text):
        if not covered[index]:
            kept.append(char)
        elif index == 0 or not covered[index - 1]:
            kept.append("[redacted]")
    return "".join(kept)


def response_error(
    what: str, response: requests.Response, content: bytes, secrets: Sequence[str]
) -> IsometricError:
    """The error for a response outside 2xx, whose body is `content`. `what` names the request,
    e.g. "GET /organisation"; what the server echoed of `secrets` is blanked out."""
    status = response.status_code
    body = _body(content)
    detail = _detail(body, secrets)
    if status == 422:
        return _validation_error(what, _field_errors(body, secrets))
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
    if isinstance(exc, requests.ReadTimeout) or isinstance(_cause(exc), ReadTimeoutError):
        return TransportError(
            f"{what}: no answer in time", may_have_reached_server=True, timed_out=True
        )
    return TransportError(f"{what}: the connection broke", may_have_reached_server=True)


def _cause(exc: requests.RequestException) -> object:
    """The urllib3 error requests wrapped (a body read that timed out is a ConnectionError)."""
    return exc.args[0] if exc.args else None


def _connection_refused(exc: requests.RequestException) -> bool:
    """True when no connection was made: refused, unreachable, or the name did not resolve."""
    cause = _cause(exc)
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)


def _detail(body: object, secrets: Sequence[str]) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    return f": {_clean(detail, secrets)}" if isinstance(detail, str) else ""


def _clean(value: object, secrets: Sequence[str]) -> str:
    return redact(str(value)[:MAX_DETAIL], secrets)


def _field_errors(body: object, secrets: Sequence[str]) -> list[FieldError]:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return [FieldError(loc=(), msg=_clean(detail, secrets), type="")]
    if not isinstance(detail, list):
        return []
    return [
        FieldError(
            loc=_location(item.get("loc"), secrets),
            msg=_clean(item.get("msg", ""), secrets),
            type=_clean(item.get("type", ""), secrets),
        )
        for item in detail
        if isinstance(item, dict)
    ]


def _location(loc: object, secrets: Sequence[str]) -> tuple[str | int, ...]:
    if not isinstance(loc, list):
        return ()
    return tuple(
        part if isinstance(part, int) else _clean(part, secrets)
        for part in loc
        if isinstance(part, str | int) and not isinstance(part, bool)
    )


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
    """Retry-After in seconds within [0, MAX_RETRY_AFTER]; the header may hold seconds or an HTTP
    date. None when there is no header or it is neither."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _seconds_until(http_date: str) -> float:
    """Seconds from now until `http_date`, NaN when it is not a date."""
    try:
        when = parsedate_to_datetime(http_date)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _body(content: bytes) -> object:
    try:
        return json_body(content)
    except ValueError:
        return None
