"""The batches Isometric itself holds, a page at a time, live from its API (nothing is stored).

One API call per page view. The web process keeps one client per account (CLIENTS), shared by
its request threads, so consecutive pages reuse a connection to Isometric.
"""

from dataclasses import dataclass

from django.utils.text import capfirst

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
from portal.models import Clients, IsometricAccount, UnreadableCredentials

PAGE_SIZES = (10, 25, 50)
# The web process's clients, one per account, shared by its threads (see Clients).
CLIENTS = Clients()


@dataclass(frozen=True)
class PageRequest:
    """A page of "In Isometric": `after` and `before` are Isometric's cursors of the pages
    next to it in the order shown (Isometric's own, or its reverse when `newest_first`)."""

    size: int
    after: str = ""
    before: str = ""
    supplier_reference_id: str = ""
    newest_first: bool = True


@dataclass(frozen=True)
class RemoteRow:
    batch: RemoteBatch
    facility_name: str  # the portal's name for the batch's facility, else Isometric's id
    local_id: int | None  # the portal's copy of the batch, if it has one


@dataclass(frozen=True)
class RemotePage:
    rows: list[RemoteRow]
    unreadable: tuple[str, ...]  # why each batch Isometric sent that cannot be shown
    total_count: int | None
    next_cursor: str | None
    previous_cursor: str | None


class RemoteUnavailable(Exception):
    """Isometric could not give the page; the message says why in an operator's words."""

    def __init__(self, message: str, stale_cursor: bool = False) -> None:
        super().__init__(message)
        self.stale_cursor = stale_cursor


def remote_page(account: IsometricAccount, request: PageRequest) -> RemotePage:
    """One page of the account's batches in Isometric, each with the portal's copy and name for
    its facility. The caller has checked that the user is a member of the account, so its
    batches are theirs to see. Raises RemoteUnavailable when Isometric gives no page."""
    # Isometric's API has no order parameter, and lists batches in the order they were
    # uploaded. The newest first are its list read from the end: the first page is its `last`,
    # older pages go `before` in its list, newer ones `after`.
    backwards = bool(request.before) != request.newest_first
    cursor = request.after or request.before or None
    try:
        page = CLIENTS.get(account).list_production_batches(
            first=None if backwards else request.size,
            after=None if backwards else cursor,
            last=request.size if backwards else None,
            before=cursor if backwards else None,
            supplier_reference_id=request.supplier_reference_id or None,
        )
    except UnreadableCredentials as exc:
        raise RemoteUnavailable(capfirst(str(exc))) from None
    except IsometricError as exc:
        raise _unavailable(exc) from None
    local_ids = dict(
        account.batches.filter(remote_id__in=[batch.id for batch in page.nodes]).values_list(
            "remote_id", "pk"
        )
    )
    facility_names = dict(account.facilities.values_list("isometric_id", "name"))
    rows = [
        RemoteRow(
            batch, facility_names.get(batch.facility_id, batch.facility_id), local_ids.get(batch.id)
        )
        for batch in page.nodes
    ]
    info = page.page_info
    later = info.end_cursor if info.has_next_page else None
    earlier = info.start_cursor if info.has_previous_page else None
    if request.newest_first:
        rows, later, earlier = rows[::-1], earlier, later
    return RemotePage(
        rows=rows,
        unreadable=page.unreadable,
        total_count=page.total_count,
        next_cursor=later,
        previous_cursor=earlier,
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
