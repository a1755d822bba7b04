"""Read queries for the batch pages: keyset-paged lists, search and filters, the counts shown."""

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from batches import search
from batches.history import Via
from batches.models import EARLIEST_MOMENT, LATEST_MOMENT, MAX_ROW_ID, ProductionBatch, SyncStatus
from portal import history
from portal.accounts import accounts_of
from portal.models import IsometricAccount

NEEDS_ATTENTION = (SyncStatus.PENDING, SyncStatus.SYNCING, SyncStatus.REJECTED, SyncStatus.FAILED)
COUNT_CAP = 1000
# What a list row shows; the rest of a batch (search text, errors) stays in the database.
LIST_COLUMNS = (
    "facility__name",
    "supplier_reference_id",
    "display_name",
    "started_at",
    "mass_magnitude",
    "mass_unit",
    "sync_status",
    # Whether the page keeps watching the row's badge (ProductionBatch.is_in_motion), and a mark.
    "account",
    "next_attempt_at",
    "deleted_in_isometric_at",
)


class InvalidCursor(ValueError):
    """A page link that does not decode: edited by hand, truncated, or from another version."""


@dataclass(frozen=True)
class Cursor:
    """A position in the list's order (newest production start first, then newest row)."""

    started_at: datetime
    pk: int

    @classmethod
    def of(cls, batch: ProductionBatch) -> "Cursor":
        return cls(batch.started_at, batch.pk)

    def encode(self) -> str:
        raw = f"{self.started_at.isoformat()}|{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            started_at, pk = raw.split("|")
            moment = datetime.fromisoformat(started_at)
            if timezone.is_naive(moment):
                raise InvalidCursor(token)
            cursor = cls(moment.astimezone(UTC), int(pk))
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
            raise InvalidCursor(token) from error
        # A cursor marks a batch's start and row: anything else is not one of the portal's,
        # and could overflow a database's date arithmetic.
        in_range = EARLIEST_MOMENT <= cursor.started_at <= LATEST_MOMENT
        if not in_range or not 0 < cursor.pk <= MAX_ROW_ID:
            raise InvalidCursor(token)
        return cursor

    def older(self) -> Q:
        # The redundant bound on started_at lets the database walk the index as a range.
        return Q(started_at__lte=self.started_at) & (
            Q(started_at__lt=self.started_at) | Q(pk__lt=self.pk)
        )

    def newer(self) -> Q:
        return Q(started_at__gte=self.started_at) & (
            Q(started_at__gt=self.started_at) | Q(pk__gt=self.pk)
        )


@dataclass(frozen=True)
class BatchPage:
    batches: list[ProductionBatch]
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def is_first(self) -> bool:
        return self.previous_cursor is None

    @property
    def in_motion(self) -> list[int]:
        return in_motion(self.batches)


def visible_batches(user: AbstractBaseUser | AnonymousUser) -> QuerySet[ProductionBatch]:
    """The batches of the user's Isometric accounts: anything else is another organisation's."""
    if getattr(user, "is_superuser", False):
        return ProductionBatch.objects.all()
    return ProductionBatch.objects.filter(account__in=accounts_of(user).values("pk"))


def watched_batches(
    user: AbstractBaseUser | AnonymousUser, ids: Iterable[int]
) -> list[ProductionBatch]:
    """Those of these batches the user may see, with what their status badges show."""
    return list(
        visible_batches(user)
        .filter(pk__in=ids)
        .only("sync_status", "next_attempt_at")
        .order_by("pk")
    )


def in_motion(batches: Iterable[ProductionBatch]) -> list[int]:
    """The ids of the batches whose status may change within the minute: a page showing them
    keeps asking for their badges."""
    return [batch.pk for batch in batches if batch.is_in_motion]


def filtered_batches(
    batches: QuerySet[ProductionBatch], filters: dict[str, Any]
) -> QuerySet[ProductionBatch]:
    if query := filters.get("q"):
        batches = search.matching(batches, query)
    if facility := filters.get("facility"):
        batches = batches.filter(facility=facility)
    if feedstock_type := filters.get("feedstock_type"):
        batches = batches.filter(feedstock_types=feedstock_type)
    if sync_status := filters.get("sync_status"):
        batches = batches.filter(sync_status=sync_status)
    else:
        batches = batches.exclude(sync_status=SyncStatus.VOIDED)  # kept, out of the way
    if started_from := filters.get("started_from"):
        batches = batches.filter(started_at__gte=_start_of(started_from))
    if started_to := filters.get("started_to"):
        batches = batches.filter(started_at__lt=_start_of(started_to + timedelta(days=1)))
    return batches


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def batch_page(
    batches: QuerySet[ProductionBatch],
    size: int,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> BatchPage:
    """One page of `batches`, newest first, after or before a cursor."""
    batches = batches.select_related("facility").only(*LIST_COLUMNS)
    if before:
        newer = batches.filter(before.newer()).order_by("started_at", "pk")
        rows = list(newer[: size + 1])
        # A short page going back means the top of the list: show the first page, full.
        if len(rows) > size:
            page = rows[:size][::-1]
            return BatchPage(page, _cursor(page[-1]), _cursor(page[0]))
        after = None
    if after:
        batches = batches.filter(after.older())
    rows = list(batches[: size + 1])
    page = rows[:size]
    next_cursor = _cursor(page[-1]) if len(rows) > size else None
    # Past the end, Previous goes back from where the operator came.
    previous_cursor = (_cursor(page[0]) if page else after.encode()) if after else None
    return BatchPage(page, next_cursor, previous_cursor)


def _cursor(batch: ProductionBatch) -> str:
    return Cursor.of(batch).encode()


def in_chunks(batches: QuerySet[ProductionBatch], size: int) -> Iterator[ProductionBatch]:
    """Every one of `batches` in the list's order, read a keyset page of `size` at a time, so
    memory stays flat however many there are. QuerySet.iterator() would not do: on PostgreSQL
    the portal's cursors are client-side (see settings), which read a whole result at once."""
    batches = batches.order_by("-started_at", "-pk")
    chunk = list(batches[:size])
    while chunk:
        yield from chunk
        if len(chunk) < size:
            return
        chunk = list(batches.filter(Cursor.of(chunk[-1]).older())[:size])


def attention_counts(batches: QuerySet[ProductionBatch]) -> dict[str, int]:
    """How many batches wait in each unsettled state, counted up to COUNT_CAP."""
    return status_counts(batches, NEEDS_ATTENTION, COUNT_CAP)


def status_counts(
    batches: QuerySet[ProductionBatch], statuses: Iterable[SyncStatus], cap: int
) -> dict[str, int]:
    """How many of `batches` are in each of `statuses`, each counted up to `cap`.

    The cap bounds the work to a slice of the status index, however large a backlog grows. The
    capped counts go to the database as one statement: a round trip each costs more than the
    counting.
    """
    statuses = list(statuses)
    ids = batches.order_by().values("pk")
    columns: list[str] = []
    params: list[Any] = []
    for status in statuses:
        sql, status_params = ids.filter(sync_status=status)[:cap].query.sql_with_params()
        columns.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped)")
        params.extend(status_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)}", params)
        counts = cursor.fetchone()
    return {status.value: count for status, count in zip(statuses, counts, strict=True)}


def last_pulled_at(accounts: list[IsometricAccount]) -> datetime | None:
    """When the least recently pulled of these accounts was last mirrored here."""
    pulled = [account.last_pulled_at for account in accounts]
    if not pulled or None in pulled:
        return None
    return min(moment for moment in pulled if moment is not None)


@dataclass(frozen=True)
class Attempt:
    """One push of the batch to Isometric, in its timeline."""

    at: datetime
    outcome: str
    http_status: int | None
    duration_ms: int
    message: str
    kind: ClassVar[str] = "attempt"


def batch_timeline(batch: ProductionBatch, limit: int) -> list[history.Change | Attempt]:
    """The batch's newest `limit` changes and attempts to send it, newest first, in a few
    queries however long its history: its entries, its attempts, the rows they name."""
    changes = history.changes(
        history.newest_entries(batch, limit), ProductionBatch, dict(Via.choices)
    )
    attempts = [
        Attempt(
            at=attempt.started_at,
            outcome=attempt.get_outcome_display(),
            http_status=attempt.http_status,
            duration_ms=attempt.duration_ms,
            message=attempt.message,
        )
        for attempt in batch.attempts.all()[:limit]
    ]
    entries: list[history.Change | Attempt] = [*changes, *attempts]
    return sorted(entries, key=lambda entry: entry.at, reverse=True)[:limit]
