"""The batches Isometric itself holds, a page at a time, live from the API (nothing is stored).

One API call per page. Clients are kept per thread and account, so consecutive pages reuse a
connection to Isometric.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

from django.db import connection

from batches.models import ProductionBatch
from isometric.errors import (
    AuthenticationFailed,
    InvalidCursor,
    IsometricError,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)
from isometric.models import Page
from isometric.models import ProductionBatch as RemoteBatch
from portal import crypto
from portal.models import Clients, IsometricAccount

PAGE_SIZES = (10, 25, 50)
_thread = threading.local()


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: str = ""
    before: str = ""
    supplier_reference_id: str = ""


@dataclass(frozen=True)
class RemotePage:
    batches: list[RemoteBatch]
    unreadable: tuple[str, ...]  # why each batch Isometric sent that cannot be shown
    local_ids: dict[str, int]  # the portal's copies of these batches, by remote id
    facility_names: dict[str, str]  # by Isometric id, for the facilities the portal knows
    total_count: int | None
    next_cursor: str | None
    previous_cursor: str | None


class RemoteUnavailable(Exception):
    """Isometric could not give the page; the message says why in an operator's words."""

    def __init__(self, message: str, stale_cursor: bool = False) -> None:
        super().__init__(message)
        self.stale_cursor = stale_cursor


class PendingPage:
    """A page being fetched from Isometric while the view renders the rest of the page: the
    request goes out at once, in a thread of its own, and `page` or `problem` waits for it.
    So the portal's own work before the table costs no time on top of Isometric's."""

    def __init__(self, account: IsometricAccount, request: PageRequest) -> None:
        self.account = account
        running = threading.Event()
        self._answer = _fetchers.submit(_fetch, account, request, running)
        # Until the fetching thread runs: it then keeps the interpreter until its request is
        # out, where otherwise it could wait for this thread's rendering to let go of it. (Not
        # for long if every fetching thread is busy: the request then goes out when one frees.)
        running.wait(timeout=0.5)
        # Looked up while Isometric answers: the portal's (short) list of facilities.
        self._facility_names = dict(account.facilities.values_list("isometric_id", "name"))

    @cached_property
    def _outcome(self) -> RemotePage | RemoteUnavailable:
        try:
            answer = self._answer.result()
        except RemoteUnavailable as exc:
            return exc
        return _linked(self.account, answer, self._facility_names)

    @property
    def page(self) -> RemotePage | None:
        return self._outcome if isinstance(self._outcome, RemotePage) else None

    @property
    def problem(self) -> RemoteUnavailable | None:
        return self._outcome if isinstance(self._outcome, RemoteUnavailable) else None


# The threads that talk to Isometric for the pages, each with its clients (one connection each).
_fetchers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="isometric-page")


def _fetch(
    account: IsometricAccount, request: PageRequest, running: threading.Event
) -> Page[RemoteBatch]:
    running.set()
    try:
        return (
            _clients()
            .get(account)
            .list_production_batches(
                first=None if request.before else request.size,
                after=request.after or None,
                last=request.size if request.before else None,
                before=request.before or None,
                supplier_reference_id=request.supplier_reference_id or None,
            )
        )
    except crypto.InvalidToken:
        raise RemoteUnavailable(_UNREADABLE) from None
    except IsometricError as exc:
        raise _unavailable(exc) from None


def _linked(
    account: IsometricAccount, page: Page[RemoteBatch], facility_names: dict[str, str]
) -> RemotePage:
    """The page, with the portal's copies of its batches. The user is a member of the account
    (the view chose it among theirs), so its batches are theirs to see."""
    info = page.page_info
    return RemotePage(
        batches=page.nodes,
        unreadable=page.unreadable,
        local_ids=_mirrored(account, [batch.id for batch in page.nodes]),
        facility_names=facility_names,
        total_count=page.total_count,
        next_cursor=info.end_cursor if info.has_next_page else None,
        previous_cursor=info.start_cursor if info.has_previous_page else None,
    )


def _mirrored(account: IsometricAccount, remote_ids: list[str]) -> dict[str, int]:
    """The portal's batches among these remote ids, by remote id. In SQL of its own: the ORM
    takes ten times as long to build this query as the database to answer it, and it runs
    after Isometric has answered, adding to the page's time."""
    if not remote_ids:
        return {}
    table = ProductionBatch._meta.db_table
    placeholders = ", ".join(["%s"] * len(remote_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT remote_id, id FROM {table} "
            f"WHERE account_id = %s AND remote_id IN ({placeholders})",
            [account.pk, *remote_ids],
        )
        return dict(cursor.fetchall())


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
