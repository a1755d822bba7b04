"""The home page's figures: production by facility and week, batches by status, what is
waiting or needs attention, the newest changes. Each is an aggregate query, or a short walk,
over an index that answers it, however many batches there are; Python then works on the
aggregates, never on the batches one by one."""

import bisect
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from batches import selectors
from batches.forms import TONNES_PER_UNIT
from batches.history import Via
from batches.models import Facility, ProductionBatch, SyncStatus
from portal import history

WEEKS_CHARTED = 52
# Each status's count stops there ("100,000+"), so that counting reads a bounded slice of the
# status index however many batches were ever synced.
COUNT_CAP = 100_000
# Entries read for each change shown: an operation on a batch logs one or two (its fields, its
# feedstock types).
ENTRIES_PER_CHANGE = 3
ZERO = Decimal(0)
TONNES_PLACES = Decimal("0.000001")  # tonnes()'s decimal places


def tonnes() -> Case:
    """A batch's mass in tonnes, reckoned in SQL as forms.mass_in_tonnes reckons it."""
    mass = F("mass_magnitude")
    return Case(
        *(When(mass_unit=unit, then=mass * Value(per)) for unit, per in TONNES_PER_UNIT.items()),
        default=mass,
        output_field=DecimalField(max_digits=30, decimal_places=6),
    )


@dataclass(frozen=True)
class Periods:
    """The moments the figures are counted between, in the portal's time zone: weeks start on
    Monday at midnight."""

    week: datetime  # this week's start
    month: datetime
    year: datetime
    weeks: list[datetime]  # the charted weeks' starts, oldest first, then this week's end

    @classmethod
    def around(cls, now: datetime) -> "Periods":
        today = timezone.localtime(now).date()
        monday = today - timedelta(days=today.weekday())
        weeks = [_midnight(monday - timedelta(weeks=n)) for n in range(WEEKS_CHARTED - 1, -2, -1)]
        return cls(
            week=weeks[-2],
            month=_midnight(today.replace(day=1)),
            year=_midnight(today.replace(month=1, day=1)),
            weeks=weeks,
        )

    @property
    def since(self) -> dict[str, datetime]:
        return {"week": self.week, "month": self.month, "year": self.year}

    @property
    def bounds(self) -> list[datetime]:
        """Every moment a figure starts or ends at, in order: between two of them, each batch
        counts towards the same figures."""
        return sorted({*self.weeks, self.month, self.year})


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class FacilityProduction:
    """Tonnes a facility produced (by the start of its batches), voided batches left out."""

    name: str
    week: Decimal
    month: Decimal
    year: Decimal
    weekly: list[Decimal]  # each charted week's, oldest first

    @property
    def charted(self) -> Decimal:
        return sum(self.weekly, ZERO)


@dataclass(frozen=True)
class Production:
    periods: Periods
    facilities: list[FacilityProduction]  # by name

    @property
    def total(self) -> FacilityProduction:
        return _sum_of("All facilities", self.facilities)


def _sum_of(name: str, facilities: Sequence[FacilityProduction]) -> FacilityProduction:
    return FacilityProduction(
        name=name,
        week=sum((each.week for each in facilities), ZERO),
        month=sum((each.month for each in facilities), ZERO),
        year=sum((each.year for each in facilities), ZERO),
        weekly=[sum((each.weekly[n] for each in facilities), ZERO) for n in range(WEEKS_CHARTED)],
    )


def production(account_ids: Sequence[int], now: datetime) -> Production:
    """Each facility's tonnes this week, month and year, and in each charted week: the tonnes
    between each two bounds of the figures, by facility, then added up. The batches are those
    at the accounts' facilities (a batch's facility is always its account's: the batch form and
    the pull see to it)."""
    periods = Periods.around(now)
    bounds = periods.bounds
    names = _names(account_ids)
    weekly: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO] * WEEKS_CHARTED)
    since: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for stretch, facility, amount in _tonnes_by_stretch(account_ids, bounds):
        start = bounds[stretch]
        week = bisect.bisect_right(periods.weeks, start) - 1
        if 0 <= week < WEEKS_CHARTED:
            weekly[facility][week] += amount
        for period, first in periods.since.items():
            if start >= first:
                since[facility][period] += amount
    produced = [
        FacilityProduction(
            name=names[pk],
            week=since[pk]["week"],
            month=since[pk]["month"],
            year=since[pk]["year"],
            weekly=weekly[pk],
        )
        for pk in weekly.keys() | since.keys()
    ]
    return Production(periods, sorted(produced, key=lambda each: each.name.casefold()))


def _tonnes_by_stretch(
    account_ids: Sequence[int], bounds: list[datetime]
) -> list[tuple[int, int, Decimal]]:
    """(stretch, facility, tonnes) for each stretch between two bounds (the stretch numbered by
    its first bound) in which one of the accounts' facilities produced, voided batches left
    out.

    One statement, a part for each stretch (UNION ALL): each part reads a range of the
    (facility, start, …) index alone and groups it by facility in the index's order. A single
    GROUP BY facility and stretch would sort every batch of the year instead, ten times slower
    on SQLite. The part is compiled once and repeated with each stretch's bounds, its last two
    parameters: compiling fifty-odd querysets costs more than running them."""
    stretches = list(itertools.pairwise(bounds))
    if not account_ids or not stretches:
        return []
    first, end = stretches[0]
    facilities = Facility.objects.filter(account__in=account_ids).values("pk")
    part = (
        ProductionBatch.objects.filter(facility__in=facilities)
        .exclude(sync_status=SyncStatus.VOIDED)
        .order_by()
        .values("facility")
        .annotate(tonnes=Sum(tonnes()))
        .filter(started_at__gte=first, started_at__lt=end)
    )
    sql, params = part.query.sql_with_params()
    started_at = ProductionBatch._meta.get_field("started_at")
    statement, arguments = [], []
    for n, (start, end) in enumerate(stretches):
        statement.append(f"SELECT {n}, * FROM ({sql}) AS stretch_{n}")
        arguments += [
            *params[:-2],
            *(started_at.get_db_prep_value(bound, connection) for bound in (start, end)),
        ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(statement), arguments)
        # SQLite sums to a float, PostgreSQL to a Decimal; both to the places tonnes() has.
        return [
            (n, facility, Decimal(str(amount)).quantize(TONNES_PLACES))
            for n, facility, amount in cursor
        ]


def _names(account_ids: Sequence[int]) -> dict[int, str]:
    """The accounts' facilities' names, each with its account's when the user works in several
    (two organisations may both have a "Kiln 1")."""
    facilities = Facility.objects.filter(account__in=account_ids).select_related("account")
    several = len(account_ids) > 1
    return {
        facility.pk: f"{facility.name} ({facility.account.name})" if several else facility.name
        for facility in facilities.order_by()
    }


# The chart's drawing, in SVG user units (the page scales it to the width it has): the plot's
# box, and the axis' labels at its left and below.
CHART_WIDTH, CHART_HEIGHT = 720, 262
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 64, 712, 12, 220
BAR_SHARE = 0.7  # of a week's width; the rest is the gap between bars
# The Okabe-Ito palette (static/css/portal.css, .series-1 to .series-8): seven facilities in
# colour, the eighth in black, or "Other facilities" when there are more.
COLOURS = 8


@dataclass(frozen=True)
class Series:
    name: str
    colour: int  # 1 to COLOURS
    weekly: list[Decimal]


@dataclass(frozen=True)
class Segment:
    """One series' part of a week's bar."""

    y: float
    height: float
    colour: int


@dataclass(frozen=True)
class Week:
    """A charted week: its bar (at x, the series stacked) and its figures for the table."""

    start: datetime
    x: float
    tonnes: list[Decimal]  # each series'
    total: Decimal
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    y: float
    tonnes: float


@dataclass(frozen=True)
class Chart:
    """Tonnes per week by facility, stacked, as numbers a template draws."""

    series: list[Series]
    weeks: list[Week]
    ticks: list[Tick]
    months: list[Week]  # the first week starting in each month: where its name goes
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = PLOT_LEFT
    right: int = PLOT_RIGHT
    top: int = PLOT_TOP
    bottom: int = PLOT_BOTTOM
    bar_width: float = 0.0

    @property
    def is_empty(self) -> bool:
        return not any(week.segments for week in self.weeks)


def chart(production: Production) -> Chart:
    """The charted weeks as stacked bars, the facility with most tonnes at the bottom."""
    series = _series(production.facilities)
    starts = production.periods.weeks[:-1]
    amounts = [[each.weekly[n] for each in series] for n in range(len(starts))]
    totals = [sum(week, ZERO) for week in amounts]
    axis_top, step = _scale(float(max(totals)))
    slot = (PLOT_RIGHT - PLOT_LEFT) / len(starts)
    scale = (PLOT_BOTTOM - PLOT_TOP) / axis_top
    weeks = []
    for n, start in enumerate(starts):
        segments, base = [], float(PLOT_BOTTOM)
        for each, amount in zip(series, amounts[n], strict=True):
            if amount > 0:
                height = float(amount) * scale
                base -= height
                segments.append(Segment(_r(base), _r(height), each.colour))
        x = PLOT_LEFT + n * slot + slot * (1 - BAR_SHARE) / 2
        weeks.append(Week(start, _r(x), amounts[n], totals[n], segments))
    ticks = [
        Tick(_r(PLOT_BOTTOM - n * step * scale), round(n * step, 10))
        for n in range(round(axis_top / step) + 1)
    ]
    months = [
        week
        for previous, week in itertools.pairwise(weeks)
        if timezone.localtime(week.start).month != timezone.localtime(previous.start).month
    ]
    return Chart(series, weeks, ticks, months, bar_width=_r(slot * BAR_SHARE))


def _series(facilities: list[FacilityProduction]) -> list[Series]:
    """The facilities that produced in the charted weeks, most tonnes first, each in its colour;
    beyond the palette, the rest as one."""
    producing = sorted(
        (each for each in facilities if each.charted > 0), key=lambda each: -each.charted
    )
    if len(producing) > COLOURS:
        rest = _sum_of("Other facilities", producing[COLOURS - 1 :])
        producing = [*producing[: COLOURS - 1], rest]
    return [Series(each.name, n, each.weekly) for n, each in enumerate(producing, start=1)]


def _scale(peak: float) -> tuple[float, float]:
    """The axis' top and the step between its ticks: 1, 2, 2.5 or 5 times a power of ten, so
    that two to four steps reach the peak or just above it."""
    if peak <= 0:
        return 1.0, 1.0
    least = peak / 4
    power = 10 ** math.floor(math.log10(least))
    step = next(size * power for size in (1, 2, 2.5, 5, 10) if size * power >= least)
    return step * math.ceil(peak / step), step


def _r(value: float) -> float:
    return round(value, 2)


def status_counts(batches: QuerySet[ProductionBatch]) -> dict[SyncStatus, int]:
    """Every status there is, with how many of the batches are in it, up to COUNT_CAP."""
    counts = selectors.status_counts(batches, SyncStatus, COUNT_CAP)
    return {status: counts[status.value] for status in SyncStatus}


def oldest_waiting(batches: QuerySet[ProductionBatch]) -> ProductionBatch | None:
    """The batch waiting longest to reach Isometric, with `waiting_since`: when its pushes
    began failing, else when it was last saved (so a retry or a correction starts its wait
    again, and a worker that is down leaves its batches' waits growing). Batches still to be
    sent are those with a next attempt (a check constraint sees to it): the worker's queue
    index holds them and nothing else."""
    return (
        batches.filter(next_attempt_at__isnull=False)
        .annotate(waiting_since=Coalesce("failing_since", "updated_at"))
        .select_related("facility")
        .order_by("waiting_since", "pk")
        .first()
    )


def needing_attention(
    batches: QuerySet[ProductionBatch], status: SyncStatus, limit: int
) -> list[ProductionBatch]:
    """The newest `limit` batches in `status` (rejected or failed), in the list's order."""
    return list(
        batches.filter(sync_status=status)
        .select_related("facility")
        .only(
            "facility__name",
            "supplier_reference_id",
            "display_name",
            "started_at",
            "sync_status",
            "last_error",
        )
        .order_by("-started_at", "-pk")[:limit]
    )


def recent_changes(batches: QuerySet[ProductionBatch], limit: int) -> list[history.Change]:
    """The newest `limit` changes to these batches, newest first, each naming its batch. Log
    entries are walked newest first, each looked up among the batches by primary key, until
    enough are found."""
    theirs = batches.filter(pk=OuterRef("object_id"))
    wanted = limit * ENTRIES_PER_CHANGE
    entries = list(
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(ProductionBatch))
        .filter(Exists(theirs))
        .select_related("actor")
        # Newest first by id (entries are numbered as they are written), the primary key's
        # order: the timestamp's index would first have to be matched to the content type's.
        .order_by("-pk")[:wanted]
    )
    changes = history.changes(entries, ProductionBatch, dict(Via.choices))
    if len(entries) == wanted:
        changes = changes[:-1]  # the oldest may be missing entries beyond those read
    return changes[:limit]
