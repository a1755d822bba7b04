"""Read queries for the batch pages: keyset-paged lists, search and filters, the counts shown."""

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, models
from django.db.models import Q, QuerySet
from django.utils import timezone

from batches import search
from batches.history import TECHNICAL, Via
from batches.models import (
    EARLIEST_MOMENT,
    LATEST_MOMENT,
    MASS_LIMIT,
    MAX_ROW_ID,
    Facility,
    ProductionBatch,
    SyncStatus,
)
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
    """A position in the list: the values of the batch at a page's edge that its order reads,
    its start and row, and the sort's own column (`key`: mass, status or facility id)."""

    started_at: datetime
    pk: int
    key: Decimal | str | int | None = None

    def encode(self) -> str:
        key = "" if self.key is None else f"|{self.key}"
        raw = f"{self.started_at.isoformat()}|{self.pk}{key}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        """The cursor a page link carries, its key as text: Sort.cursor reads it."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            started_at, pk, *key = raw.split("|", 2)
            moment = datetime.fromisoformat(started_at)
            if timezone.is_naive(moment):
                raise InvalidCursor(token)
            cursor = cls(moment.astimezone(UTC), int(pk), key[0] if key else None)
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
            raise InvalidCursor(token) from error
        # A cursor marks a batch's start and row: anything else is not one of the portal's,
        # and could overflow a database's date arithmetic.
        in_range = EARLIEST_MOMENT <= cursor.started_at <= LATEST_MOMENT
        if not in_range or not 0 < cursor.pk <= MAX_ROW_ID:
            raise InvalidCursor(token)
        return cursor


class SortColumn(models.TextChoices):
    START = "start", "Started"
    MASS = "mass", "Mass"
    FACILITY = "facility", "Facility"
    STATUS = "status", "Status"


# The values of the list's `sort` parameter: a column, descending with a "-".
SORTS = [f"{sign}{column}" for column in SortColumn for sign in ("-", "")]
# A column's header first sorts it this way: the newest and the heaviest first, names A to Z.
_FIRST_DESCENDING = (SortColumn.START, SortColumn.MASS)
# Statuses in the order of their labels, as an operator reads them.
STATUS_ORDER = tuple(status for status, _ in sorted(SyncStatus.choices, key=lambda c: c[1]))
# Each sort's columns in the database, the batch's id the tie-breaker that makes each row's
# place unique. Facility and status have few values: the list walks them value by value, each
# newest first along its own index (batch_facility_idx, batch_status_idx).
_COLUMNS = {
    SortColumn.START: ("started_at", "pk"),
    SortColumn.MASS: ("mass_magnitude", "started_at", "pk"),
    SortColumn.FACILITY: ("started_at", "pk"),
    SortColumn.STATUS: ("started_at", "pk"),
}
_GROUPED_BY = {SortColumn.FACILITY: "facility_id", SortColumn.STATUS: "sync_status"}


@dataclass(frozen=True)
class Sort:
    """An order of the list: a column, ascending or descending. Pages keep it by keyset, so a
    deep page reads no more rows than the first: start and mass along an index of their own,
    facility (by name) and status (by label) a value at a time, each value's batches newest
    first. `facilities`: those the list may hold, for the order by facility."""

    column: SortColumn
    descending: bool
    facilities: QuerySet[Facility] | None = field(default=None, compare=False)

    @property
    def value(self) -> str:
        """As the list's `sort` parameter says it: "-mass" is the heaviest first."""
        return f"-{self.column}" if self.descending else str(self.column)

    @classmethod
    def of(cls, value: str, facilities: QuerySet[Facility] | None = None) -> "Sort":
        column = SortColumn(value.removeprefix("-"))
        return cls(column, value.startswith("-"), facilities)

    def by(self, column: SortColumn) -> str:
        """The sort a column's header asks for: this one reversed, else the column's own."""
        if column == self.column:
            return f"{column}" if self.descending else f"-{column}"
        return f"-{column}" if column in _FIRST_DESCENDING else f"{column}"

    def cursor_of(self, batch: ProductionBatch) -> Cursor:
        keys: dict[SortColumn, Decimal | str | int | None] = {
            SortColumn.START: None,
            SortColumn.MASS: batch.mass_magnitude,
            SortColumn.FACILITY: batch.facility_id,
            SortColumn.STATUS: batch.sync_status,
        }
        return Cursor(batch.started_at, batch.pk, keys[self.column])

    def cursor(self, token: str) -> Cursor:
        """The cursor a page link carries, if it is a position in this order."""
        cursor = Cursor.decode(token)
        text = cursor.key
        if not isinstance(text, str):
            if self.column != SortColumn.START:
                raise InvalidCursor(token)
            return cursor
        key: Decimal | str | int = text
        if self.column == SortColumn.MASS:
            try:
                key = Decimal(text)
            except ArithmeticError:
                raise InvalidCursor(token) from None
            if not (key.is_finite() and 0 <= key <= MASS_LIMIT):
                raise InvalidCursor(token)
        elif self.column == SortColumn.FACILITY:
            key = int(text) if text.isascii() and text.isdecimal() else 0
        if self.column == SortColumn.START or (
            self.column in _GROUPED_BY and key not in self.groups
        ):
            raise InvalidCursor(token)
        return replace(cursor, key=key)

    @cached_property
    def groups(self) -> list[Any]:
        """The values of a grouped order, in its ascending order."""
        if self.column == SortColumn.STATUS:
            return list(STATUS_ORDER)
        facilities = self.facilities if self.facilities is not None else Facility.objects.none()
        return list(facilities.order_by("name", "pk").values_list("pk", flat=True))

    def segments(
        self, batches: QuerySet[ProductionBatch], cursor: Cursor | None, backward: bool
    ) -> Iterator[QuerySet[ProductionBatch]]:
        """The list from just past `cursor` (from its top without one), in querysets whose rows
        follow one another in the list's order, or in its reverse when `backward`."""
        columns = _COLUMNS[self.column]
        grouped_by = _GROUPED_BY.get(self.column)
        if grouped_by is None:
            descending = self.descending != backward
            if cursor:
                batches = batches.filter(_past(columns, _values(cursor, columns), descending))
            yield batches.order_by(*_ordering(columns, descending))
            return
        groups = self.groups[:: -1 if self.descending != backward else 1]
        if cursor:
            groups = groups[groups.index(cursor.key) :]
        within = _ordering(columns, not backward)  # each value's batches newest first
        for group in groups:
            segment = batches.filter(**{grouped_by: group})
            if cursor and group == cursor.key:
                segment = segment.filter(_past(columns, _values(cursor, columns), not backward))
            yield segment.order_by(*within)


DEFAULT_SORT = Sort(SortColumn.START, descending=True)


def _values(cursor: Cursor, columns: tuple[str, ...]) -> list[Any]:
    values = {"started_at": cursor.started_at, "pk": cursor.pk, "mass_magnitude": cursor.key}
    return [values[column] for column in columns]


def _ordering(columns: tuple[str, ...], descending: bool) -> list[str]:
    return [f"-{column}" if descending else column for column in columns]


def _past(columns: tuple[str, ...], values: list[Any], descending: bool) -> Q:
    """The rows after `values` in the order of `columns`, all descending or all ascending. The
    redundant bound on the first column lets the database walk the index as a range."""
    beyond = "lt" if descending else "gt"
    condition = Q(**{f"{columns[-1]}__{beyond}": values[-1]})
    for column, value in zip(columns[-2::-1], values[-2::-1], strict=True):
        condition = Q(**{f"{column}__{beyond}": value}) | (Q(**{column: value}) & condition)
    return Q(**{f"{columns[0]}__{beyond}e": values[0]}) & condition


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


def last_recorded(user: AbstractBaseUser | AnonymousUser) -> ProductionBatch | None:
    """The batch the user recorded last (by the form or an import) in one of their accounts."""
    if not user.is_authenticated:
        return None
    return (
        visible_batches(user)
        .filter(created_by_id=user.pk)
        .prefetch_related("feedstock_types")
        .order_by("-pk")
        .first()
    )


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


def capped_count(batches: QuerySet[ProductionBatch]) -> int:
    """How many batches there are, counted up to COUNT_CAP (as the status counts are)."""
    return batches.order_by().values("pk")[:COUNT_CAP].count()


def batch_page(
    batches: QuerySet[ProductionBatch],
    size: int,
    sort: Sort = DEFAULT_SORT,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> BatchPage:
    """One page of `batches` in the order `sort`, after or before a cursor."""
    batches = batches.select_related("facility").only(*LIST_COLUMNS)
    if before:
        rows = _walk(batches, sort, before, size + 1, backward=True)
        # A short page going back means the top of the list: show the first page, full.
        if len(rows) > size:
            page = rows[:size][::-1]
            return BatchPage(page, _encode(sort, page[-1]), _encode(sort, page[0]))
        after = None
    rows = _walk(batches, sort, after, size + 1, backward=False)
    page = rows[:size]
    next_cursor = _encode(sort, page[-1]) if len(rows) > size else None
    # Past the end, Previous goes back from where the operator came.
    previous_cursor = (_encode(sort, page[0]) if page else after.encode()) if after else None
    return BatchPage(page, next_cursor, previous_cursor)


def _walk(
    batches: QuerySet[ProductionBatch],
    sort: Sort,
    cursor: Cursor | None,
    limit: int,
    backward: bool,
) -> list[ProductionBatch]:
    """Up to `limit` batches from just past `cursor`, in the order `sort` (or its reverse)."""
    rows: list[ProductionBatch] = []
    for segment in sort.segments(batches, cursor, backward):
        rows += segment[: limit - len(rows)]
        if len(rows) >= limit:
            break
    return rows


def _encode(sort: Sort, batch: ProductionBatch) -> str:
    return sort.cursor_of(batch).encode()


def in_chunks(
    batches: QuerySet[ProductionBatch], size: int, sort: Sort = DEFAULT_SORT
) -> Iterator[ProductionBatch]:
    """Every one of `batches` in the list's order, read a keyset page of `size` at a time, so
    memory stays flat however many there are. QuerySet.iterator() would not do: on PostgreSQL
    the portal's cursors are client-side (see settings), which read a whole result at once."""
    cursor = None
    while chunk := _walk(batches, sort, cursor, size, backward=False):
        yield from chunk
        if len(chunk) < size:
            return
        cursor = sort.cursor_of(chunk[-1])


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
        history.newest_entries(batch, limit), ProductionBatch, dict(Via.choices), TECHNICAL
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
