"""The batches Isometric itself holds, a page at a time, live from the API (nothing is stored).

One API call per page. Clients are kept per thread and account, so consecutive pages reuse one
connection to Isometric.
"""

import threading
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from batches.selectors import visible_batches
from batches.sync import Clients
from isometric.errors import (
    AuthenticationFailed,
    InvalidCursor,
    IsometricError,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)
from isometric.models import ProductionBatch as RemoteBatch
from portal import crypto
from portal.models import IsometricAccount

PAGE_SIZES = (10, 25, 50)
_thread = threading.local()


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: str = ""
    before: str = ""
    supplier_reference_id: str = ""


@dataclass(frozen=True)
class Row:
    batch: RemoteBatch
    local_pk: int | None  # the portal's copy, when it has one the user may see


@dataclass(frozen=True)
class RemotePage:
    rows: list[Row]
    total_count: int | None
    next_cursor: str | None
    previous_cursor: str | None


class RemoteUnavailable(Exception):
    """Isometric could not give the page; the message says why in an operator's words."""

    def __init__(self, message: str, stale_cursor: bool = False) -> None:
        super().__init__(message)
        self.stale_cursor = stale_cursor


def fetch_page(
    account: IsometricAccount, request: PageRequest, user: AbstractBaseUser | AnonymousUser
) -> RemotePage:
    """One page of the account's batches in Isometric, each linked to the portal's copy."""
    try:
        client = _clients().get(account)
        page = client.list_production_batches(
            first=None if request.before else request.size,
            after=request.after or None,
            last=request.size if request.before else None,
            before=request.before or None,
            supplier_reference_id=request.supplier_reference_id or None,
        )
    except crypto.InvalidToken:
        raise RemoteUnavailable(_UNREADABLE) from None
    except IsometricError as exc:
        raise _unavailable(exc) from None
    ids = [batch.id for batch in page.nodes]
    local = dict(visible_batches(user).filter(remote_id__in=ids).values_list("remote_id", "pk"))
    info = page.page_info
    return RemotePage(
        rows=[Row(batch, local.get(batch.id)) for batch in page.nodes],
        total_count=page.total_count,
        next_cursor=info.end_cursor if info.has_next_page else None,
        previous_cursor=info.start_cursor if info.has_previous_page else None,
    )


def _clients() -> Clients:
    clients: Clients | None = getattr(_thread, "clients", None)
    if clients is None:
        clients = _thread.clients = Clients()
    return clients


_UNREADABLE = (
    "This account's credentials cannot be read with the portal's current encryption keys. "
    "An admin needs to enter them again."
)


def _unavailable(exc: IsometricError) -> RemoteUnavailable:
    if isinstance(exc, InvalidCursor):
        return RemoteUnavailable(
            "This page link is no longer valid: Isometric's page markers expire, and this one "
            "may also have been altered.",
            stale_cursor=True,
        )
    if isinstance(exc, TransportError) and exc.timed_out:
        return RemoteUnavailable(
            "Isometric is taking too long to answer. It may be busy: try again in a moment."
        )
    if isinstance(exc, TransportError):
        return RemoteUnavailable(
            "Isometric cannot be reached right now. Try again in a few minutes."
        )
    if isinstance(exc, RateLimited):
        wait = f"in {exc.retry_after:.0f} seconds" if exc.retry_after else "in a moment"
        return RemoteUnavailable(
            f"Isometric is receiving too many requests from the portal. Try again {wait}."
        )
    if isinstance(exc, ServerError):
        return RemoteUnavailable(
            "Isometric is having trouble right now (it answered with an error). "
            "Try again in a few minutes."
        )
    if isinstance(exc, AuthenticationFailed):
        return RemoteUnavailable(
            "Isometric refused this account's credentials, so its batches cannot be shown. "
            "An admin needs to update them."
        )
    if isinstance(exc, ValidationFailed):
        return RemoteUnavailable(f"Isometric did not accept this request: {exc}")
    return RemoteUnavailable(
        "Isometric sent an answer the portal does not understand. Try again; if it keeps "
        "happening, tell an admin."
    )
