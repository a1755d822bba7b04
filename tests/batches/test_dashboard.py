"""The home page: the figures of the user's accounts, the chart's geometry, the bulk retry."""

import html
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from batches import dashboard
from batches.dashboard import (
    PLOT_BOTTOM,
    PLOT_LEFT,
    PLOT_RIGHT,
    PLOT_TOP,
    WEEKS_CHARTED,
    FacilityProduction,
    Periods,
    Production,
)
from batches.history import Via, changes_via, log_batch_changes
from batches.models import Facility, ProductionBatch, SyncStatus
from portal.models import IsometricAccount
from tests.factories import log_in, make_account, make_batch, make_facility, make_user

pytestmark = pytest.mark.django_db

AUCKLAND = ZoneInfo("Pacific/Auckland")
# A Wednesday; the week began on Monday 13 January 2025 at midnight in Auckland (NZDT, UTC+13),
# which is Sunday 11:00 in UTC.
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=AUCKLAND)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AUCKLAND)


@pytest.fixture
def auckland(settings: Settings) -> None:
    settings.TIME_ZONE = "Pacific/Auckland"


def test_periods_start_on_monday_midnight_in_the_portal_s_time_zone(auckland: None) -> None:
    periods = Periods.around(NOW)

    assert periods.week == at(2025, 1, 13)
    assert periods.week.astimezone(ZoneInfo("UTC")) == datetime(
        2025, 1, 12, 11, tzinfo=ZoneInfo("UTC")
    )
    assert (periods.month, periods.year) == (at(2025, 1, 1), at(2025, 1, 1))
    assert len(periods.weeks) == WEEKS_CHARTED + 1
    assert periods.weeks[0] == at(2024, 1, 22)
    assert periods.weeks[-1] == at(2025, 1, 20)
    assert all(timezone.localtime(week).weekday() == 0 for week in periods.weeks)


def test_tonnes_by_facility_this_week_month_and_year_and_by_week(auckland: None) -> None:
    mine, theirs = make_account("Mine"), make_account("Theirs")
    kiln_1, kiln_2 = make_facility("Kiln 1", mine), make_facility("Kiln 2", mine)
    synced: dict[str, Any] = {"sync_status": SyncStatus.SYNCED}
    # This week, in its first half hour (still Sunday in UTC).
    make_batch(kiln_1, started_at=at(2025, 1, 13, 0, 30), mass_magnitude=Decimal(10))
    # Last week's last half hour: 2,000 kg.
    make_batch(
        kiln_1,
        started_at=at(2025, 1, 12, 23, 30),
        mass_magnitude=Decimal(2000),
        mass_unit="kg",
        **synced,
    )
    # Last year, in the week of Monday 30 December.
    make_batch(
        kiln_1, started_at=at(2024, 12, 31, 10), mass_magnitude=Decimal(5), mass_unit="t", **synced
    )
    # This year, the same week; a unit of unknown size counts as it is (mass_in_tonnes).
    make_batch(
        kiln_2, started_at=at(2025, 1, 2, 8), mass_magnitude=Decimal(4), mass_unit="bag", **synced
    )
    make_batch(kiln_2, started_at=at(2025, 1, 14, 8), mass_magnitude=Decimal(3), **synced)
    # Left out: voided, before the charted weeks, another account's.
    make_batch(
        kiln_2,
        started_at=at(2025, 1, 14, 9),
        mass_magnitude=Decimal(100),
        sync_status=SyncStatus.VOIDED,
    )
    make_batch(kiln_1, started_at=at(2023, 12, 1), mass_magnitude=Decimal(7), **synced)
    make_batch(
        make_facility("Kiln 1", theirs), started_at=at(2025, 1, 14), mass_magnitude=Decimal(50)
    )

    production = dashboard.production([mine.pk], NOW)

    one, two = production.facilities
    assert (one.name, one.week, one.month, one.year) == ("Kiln 1", 10, 12, 12)
    assert (two.name, two.week, two.month, two.year) == ("Kiln 2", 3, 7, 7)
    assert one.weekly[-1] == 10 and one.weekly[-2] == 2 and one.weekly[-3] == 5
    assert two.weekly[-1] == 3 and two.weekly[-3] == 4
    assert sum(one.weekly) == 17 and sum(two.weekly) == 7
    total = production.total
    assert (total.name, total.week, total.month, total.year) == ("All facilities", 13, 19, 19)
    assert total.weekly[-3:] == [9, 2, 13]


def test_a_user_of_several_accounts_sees_each_facility_s_account(auckland: None) -> None:
    first, second = make_account("First"), make_account("Second")
    for account in (first, second):
        make_batch(make_facility("Kiln 1", account), started_at=at(2025, 1, 14))

    names = [each.name for each in dashboard.production([first.pk, second.pk], NOW).facilities]

    assert names == ["Kiln 1 (First)", "Kiln 1 (Second)"]


def test_no_accounts_no_production() -> None:
    production = dashboard.production([], timezone.now())
    assert production.facilities == []
    assert production.total.year == 0 and production.total.weekly == [0] * WEEKS_CHARTED
    assert dashboard.chart(production).is_empty


def produced(name: str, weekly: dict[int, str]) -> FacilityProduction:
    """A facility's production with the given tonnes in the given charted weeks (from 0)."""
    values = [Decimal(weekly.get(n, "0")) for n in range(WEEKS_CHARTED)]
    return FacilityProduction(name, Decimal(0), Decimal(0), sum(values, Decimal(0)), values)


def test_the_chart_stacks_each_week_s_facilities_to_scale(auckland: None) -> None:
    production = Production(
        Periods.around(NOW),
        [produced("Kiln B", {51: "30"}), produced("Kiln A", {50: "30", 51: "7"})],
    )

    chart = dashboard.chart(production)

    # The facility with most tonnes over the year is the first colour, at the bottom.
    assert [(series.name, series.colour) for series in chart.series] == [
        ("Kiln A", 1),
        ("Kiln B", 2),
    ]
    # 37 t at the highest: the axis goes to 40 in steps of 10.
    assert [tick.tonnes for tick in chart.ticks] == [0, 10, 20, 30, 40]
    assert chart.ticks[0].y == PLOT_BOTTOM and chart.ticks[-1].y == PLOT_TOP
    height = PLOT_BOTTOM - PLOT_TOP
    last = chart.weeks[-1]
    kiln_a, kiln_b = last.segments
    assert (kiln_a.colour, kiln_a.height) == (1, round(7 / 40 * height, 2))
    assert kiln_a.y + kiln_a.height == pytest.approx(PLOT_BOTTOM)
    assert (kiln_b.colour, kiln_b.height) == (2, round(30 / 40 * height, 2))
    assert kiln_b.y + kiln_b.height == pytest.approx(kiln_a.y)
    assert (last.total, last.tonnes) == (37, [7, 30])
    assert [segment.colour for segment in chart.weeks[-2].segments] == [1]
    assert all(not week.segments for week in chart.weeks[:-2])
    slot = (PLOT_RIGHT - PLOT_LEFT) / WEEKS_CHARTED
    assert chart.weeks[0].x == pytest.approx(PLOT_LEFT + slot * 0.15, abs=0.01)
    assert last.x == pytest.approx(PLOT_LEFT + 51 * slot + slot * 0.15, abs=0.01)
    assert chart.bar_width == pytest.approx(slot * 0.7, abs=0.01)
    # A month's name goes under the first week that starts in it.
    assert [timezone.localtime(week.start).date().isoformat() for week in chart.months][-2:] == [
        "2024-12-02",
        "2025-01-06",
    ]


def test_beyond_the_palette_the_smallest_facilities_are_one_series(auckland: None) -> None:
    facilities = [produced(f"Kiln {n}", {51: str(10 + n)}) for n in range(10)]

    chart = dashboard.chart(Production(Periods.around(NOW), facilities))

    assert [series.name for series in chart.series] == [
        *(f"Kiln {n}" for n in range(9, 2, -1)),
        "Other facilities",
    ]
    assert chart.series[-1].weekly[51] == 10 + 11 + 12
    assert [series.colour for series in chart.series] == list(range(1, 9))


@pytest.mark.parametrize(
    ("peak", "top", "ticks"),
    [(12.5, 15, 4), (37, 40, 5), (41, 60, 4), (0.3, 0.3, 4), (1000, 1000, 5), (0, 1, 2)],
)
def test_the_axis_ends_at_a_round_number_above_the_highest_week(
    auckland: None, peak: float, top: float, ticks: int
) -> None:
    chart = dashboard.chart(Production(Periods.around(NOW), [produced("Kiln", {51: str(peak)})]))
    assert chart.ticks[-1].tonnes == pytest.approx(top)
    assert len(chart.ticks) == ticks


def test_counts_by_status_include_every_status(account: IsometricAccount) -> None:
    for status in (SyncStatus.SYNCED, SyncStatus.SYNCED, SyncStatus.FAILED, SyncStatus.VOIDED):
        make_batch(account=account, sync_status=status)

    counts = dashboard.status_counts(ProductionBatch.objects.all())

    assert counts == {
        SyncStatus.PENDING: 0,
        SyncStatus.SYNCING: 0,
        SyncStatus.SYNCED: 2,
        SyncStatus.REJECTED: 0,
        SyncStatus.FAILED: 1,
        SyncStatus.DELETED: 0,
        SyncStatus.VOIDED: 1,
    }


def test_the_oldest_waiting_batch_is_the_one_failing_or_saved_longest_ago(
    account: IsometricAccount,
) -> None:
    now = timezone.now()
    saved_long_ago = make_batch(account=account, supplier_reference_id="SAVED")
    failing = make_batch(account=account, supplier_reference_id="FAILING")
    settled = make_batch(account=account, sync_status=SyncStatus.FAILED)
    ProductionBatch.objects.filter(pk=saved_long_ago.pk).update(updated_at=now - timedelta(hours=2))
    # Retried a minute ago, failing for five hours.
    ProductionBatch.objects.filter(pk=failing.pk).update(
        updated_at=now - timedelta(minutes=1), failing_since=now - timedelta(hours=5)
    )
    ProductionBatch.objects.filter(pk=settled.pk).update(updated_at=now - timedelta(days=9))

    oldest = dashboard.oldest_waiting(ProductionBatch.objects.all())

    assert oldest is not None
    assert oldest.supplier_reference_id == "FAILING"
    assert oldest.waiting_since == now - timedelta(hours=5)  # type: ignore[attr-defined]
    ProductionBatch.objects.filter(pk=failing.pk).update(
        sync_status=SyncStatus.SYNCED, next_attempt_at=None
    )
    assert dashboard.oldest_waiting(ProductionBatch.objects.all()) == saved_long_ago
    ProductionBatch.objects.update(sync_status=SyncStatus.SYNCED, next_attempt_at=None)
    assert dashboard.oldest_waiting(ProductionBatch.objects.all()) is None


# The page, as the operator of `account` sees it.


def page(client: Client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_the_figures_of_the_user_s_accounts_only(
    client: Client, operator: User, account: IsometricAccount, facility: Facility
) -> None:
    theirs = make_account("Their Char Co")
    their_kiln = make_facility("Their kiln", theirs)
    for status in (SyncStatus.FAILED, SyncStatus.REJECTED, SyncStatus.PENDING):
        make_batch(their_kiln, supplier_reference_id=f"THEIRS-{status}", sync_status=status)
    make_batch(facility, supplier_reference_id="MINE-FAILED", sync_status=SyncStatus.FAILED)
    make_batch(facility, supplier_reference_id="MINE-SYNCED", sync_status=SyncStatus.SYNCED)
    make_batch(
        facility,
        supplier_reference_id="MINE-REFUSED",
        sync_status=SyncStatus.REJECTED,
        last_error="Isometric refused the batch: the mass is too large.",
    )

    shown = page(client)

    assert "THEIRS-" not in shown and "Their kiln" not in shown and "Their Char Co" not in shown
    for shown_status, count in [("failed", 1), ("rejected", 1), ("synced", 1), ("pending", 0)]:
        link = (
            f'href="/batches/?sync_status={shown_status}"><span class="badge badge-{shown_status}">'
        )
        assert re.search(re.escape(link) + rf"[^<]+</span> {count}<", shown), shown_status
    assert "MINE-FAILED" in shown and "MINE-REFUSED" in shown
    assert "the mass is too large" in shown
    assert (
        f'href="/batches/{ProductionBatch.objects.get(supplier_reference_id="MINE-REFUSED").pk}/edit/"'
        in shown
    )
    assert "Kiln A" in shown
    assert "No batch is waiting to be sent to Isometric." in shown
    assert "Kilns Ltd" in shown  # the accounts' section: the user's one account


def test_a_superuser_sees_every_account(admin_client: Client) -> None:
    for name in ("Alder", "Birch"):
        make_batch(make_facility("Kiln 1", make_account(name)), sync_status=SyncStatus.FAILED)

    shown = page(admin_client)

    assert "Kiln 1 (Alder)" in shown and "Kiln 1 (Birch)" in shown
    assert re.search(r'badge-failed">Failed</span> 2<', shown)


def test_the_chart_and_its_table_are_on_the_page(
    client: Client, operator: User, facility: Facility
) -> None:
    for weeks_ago in (0, 3, 20):
        make_batch(facility, started_at=timezone.now() - timedelta(weeks=weeks_ago, hours=1))

    shown = page(client)

    svg = re.search(
        r'<svg class="chart"[^>]*role="img" aria-labelledby="chart-title chart-desc">', shown
    )
    assert svg
    assert '<title id="chart-title">' in shown and '<desc id="chart-desc">' in shown
    assert len(re.findall(r'<rect class="series-1"', shown)) >= 2
    table = shown[shown.index('<details class="chart-table">') :]
    assert len(re.findall(r'<th scope="row">', table[: table.index("</details>")])) == 52
    assert "style=" not in shown  # the CSP refuses inline styles
    assert "<script>" not in shown


def test_the_page_counts_up_to_the_cap(
    client: Client, operator: User, facility: Facility, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("batches.dashboard.COUNT_CAP", 2)
    monkeypatch.setattr("batches.dashboard_views.COUNT_CAP", 2)
    for _ in range(3):
        make_batch(facility, sync_status=SyncStatus.SYNCED)

    assert 'badge-synced">Synced</span> 2+<' in page(client)


def test_the_oldest_waiting_batch_says_how_long_it_has_waited(
    client: Client, operator: User, facility: Facility
) -> None:
    batch = make_batch(facility, supplier_reference_id="SLOW-1")
    ProductionBatch.objects.filter(pk=batch.pk).update(
        updated_at=timezone.now() - timedelta(hours=3, minutes=5)
    )

    shown = page(client)

    assert re.search(r"SLOW-1</a> \(Kiln A\), for 3\xa0hours, 5\xa0minutes", shown)


def test_the_latest_ten_changes_of_the_user_s_batches(
    client: Client, operator: User, facility: Facility
) -> None:
    theirs = make_batch(make_facility("Their kiln", make_account("Theirs")))
    batches = []
    for n in range(12):
        with changes_via(Via.FORM):  # its fields and its feedstock types: one change
            batches.append(make_batch(facility, supplier_reference_id=f"CHANGED-{n:02}"))
    LogEntry.objects.update(timestamp=timezone.now() - timedelta(days=1))
    # One operation over three batches is a change of each.
    log_batch_changes(
        [(batch, {"display_name": ("", "Renamed")}) for batch in batches[:3]],
        Via.IMPORT,
        actor=operator,
    )
    log_batch_changes([(theirs, {"display_name": ("", "Theirs renamed")})], Via.FORM)

    shown = page(client)
    changes = shown[shown.index('id="changes-heading"') :]

    assert "Theirs renamed" not in changes and "Their kiln" not in changes
    named = re.findall(r'<a href="/batches/(\d+)/">(CHANGED-\d+)</a>', changes)
    assert len(named) == 10
    assert [name for _, name in named[:3]] == ["CHANGED-02", "CHANGED-01", "CHANGED-00"]
    assert changes.count("via Import") == 3 and changes.count("→ Renamed") == 3
    assert [name for _, name in named[3:]] == [f"CHANGED-{n:02}" for n in range(11, 4, -1)]


def test_every_time_on_the_page_says_its_zone(
    client: Client, operator: User, facility: Facility, auckland: None
) -> None:
    with changes_via(Via.FORM):
        make_batch(facility, supplier_reference_id="WAITING-1")
    failed = make_batch(facility, supplier_reference_id="FAILED-1", sync_status=SyncStatus.FAILED)
    started = timezone.localtime(failed.started_at)
    zone = started.strftime("%Z")  # NZDT or NZST, by the season

    shown = page(client)

    waiting = shown[shown.index('id="oldest-waiting"') :]
    assert re.search(r"since \d+ \w+ \d{4} \d\d:\d\d NZ[DS]T\.", waiting)
    assert f"started {started:%-d %b %Y %H:%M} {zone}" in shown
    changes = shown[shown.index('id="changes-heading"') :]
    assert re.search(r"<td>\d+ \w+ \d{4} \d\d:\d\d:\d\d NZ[DS]T</td>", changes)


def test_an_empty_portal_renders(admin_client: Client) -> None:
    shown = page(admin_client)

    assert "No batches produced in the last year." in shown
    assert "No batches produced in the last 52 weeks." in shown
    assert "No batch is waiting to be sent to Isometric." in shown
    assert "None: no batch was refused by Isometric or given up on." in shown
    assert "Nothing recorded yet." in shown
    assert 'badge-synced">Synced</span> 0<' in shown
    assert "Isometric accounts" not in shown


def test_an_operator_without_an_account_is_told_why_the_page_is_empty(client: Client) -> None:
    log_in(client, make_user("ozzy", operator=True))

    shown = page(client)

    assert "You are not a member of any Isometric account yet" in shown
    assert "No batches produced in the last year." in shown


def test_a_user_without_batch_permissions_sees_no_figures(client: Client) -> None:
    user = make_user("guest")
    make_account("Guests", members=(user,))
    log_in(client, user)

    shown = page(client)

    assert "Your account has no access to batches yet." in shown
    assert "Tonnes produced" not in shown and "Latest changes" not in shown
    assert "Guests" in shown  # their account's state


def test_the_accounts_last_pull_and_credentials(
    client: Client, operator: User, account: IsometricAccount
) -> None:
    IsometricAccount.objects.filter(pk=account.pk).update(
        last_pulled_at=timezone.now() - timedelta(hours=2),
        last_pull_summary="Fetched 12 batches.",
        connection_status="rejected",
    )

    shown = page(client)

    assert "2\xa0hours ago" in shown and "Fetched 12 batches." in shown
    assert "Isometric refused its credentials" in shown
    assert "Update its credentials" not in shown  # an operator is no credential admin
    assert "secret" not in shown.lower()


def test_a_credential_admin_is_led_to_each_account_s_credentials(
    admin_client: Client, account: IsometricAccount
) -> None:
    change = f'<a href="/admin/portal/isometricaccount/{account.pk}/change/">'
    assert f"{change}Update its credentials</a>" in page(admin_client)


# The bulk retry.


def retry(client: Client, *pks: Any) -> Any:
    return client.post("/batches/retry/", {"batches": [str(pk) for pk in pks]})


def test_retrying_the_chosen_failed_batches(
    client: Client, operator: User, facility: Facility
) -> None:
    chosen = [make_batch(facility, sync_status=SyncStatus.FAILED) for _ in range(2)]
    left = make_batch(facility, sync_status=SyncStatus.FAILED)
    shown = page(client)
    for batch in (*chosen, left):
        assert f'name="batches" value="{batch.pk}"' in shown

    response = retry(client, *(batch.pk for batch in chosen))

    assert response.status_code == 302 and response["Location"] == "/"
    for batch in chosen:
        batch.refresh_from_db()
        assert (batch.sync_status, batch.sync_attempts) == (SyncStatus.PENDING, 0)
        entry = LogEntry.objects.get_for_object(batch).latest("pk")
        assert (entry.actor, entry.changes) == (operator, {"sync_status": ["failed", "pending"]})
    left.refresh_from_db()
    assert left.sync_status == SyncStatus.FAILED
    assert "2 batches will be sent to Isometric again in a moment." in page(client)


def test_a_chosen_batch_retried_meanwhile_is_said_so(
    client: Client, operator: User, facility: Facility
) -> None:
    failed = make_batch(facility, sync_status=SyncStatus.FAILED)
    meanwhile = make_batch(facility, sync_status=SyncStatus.PENDING)

    retry(client, failed.pk, meanwhile.pk)

    shown = page(client)
    assert "1 batch will be sent to Isometric again in a moment." in shown
    assert "1 of the chosen batches was not waiting for a retry any more." in shown


@pytest.mark.parametrize(
    ("chosen", "error"),
    [
        ((), "Choose the batches to retry."),
        (("abc",), "“abc” is not a batch."),
        (("99999999999999999999",), "is not a batch."),
    ],
)
def test_a_retry_of_nothing_or_of_no_batch_is_refused(
    client: Client, operator: User, facility: Facility, chosen: tuple[str, ...], error: str
) -> None:
    failed = make_batch(facility, sync_status=SyncStatus.FAILED)

    response = retry(client, *chosen)

    assert response.status_code == 200
    assert error in response.content.decode()
    failed.refresh_from_db()
    assert failed.sync_status == SyncStatus.FAILED


def test_another_account_s_batch_refuses_the_whole_retry(
    client: Client, operator: User, facility: Facility
) -> None:
    mine = make_batch(facility, sync_status=SyncStatus.FAILED)
    theirs = make_batch(
        make_facility("Their kiln", make_account("Theirs")), sync_status=SyncStatus.FAILED
    )

    response = retry(client, mine.pk, theirs.pk)

    assert response.status_code == 200
    shown = html.unescape(response.content.decode())
    assert f"Batch {theirs.pk} is not one of your accounts' batches." in shown
    assert "Their kiln" not in shown
    assert set(ProductionBatch.objects.values_list("sync_status", flat=True)) == {"failed"}


def test_a_refused_batch_links_to_its_correction_for_whoever_may_correct_it(
    client: Client, operator: User, account: IsometricAccount, facility: Facility
) -> None:
    refused = make_batch(facility, sync_status=SyncStatus.REJECTED, supplier_reference_id="R-1")
    correction = f'<a href="/batches/{refused.pk}/edit/">Correct it</a>'
    assert correction in page(client)

    viewer = make_user("vera")
    viewer.user_permissions.add(Permission.objects.get(codename="view_productionbatch"))
    account.members.add(viewer)
    log_in(client, viewer)
    shown = page(client)
    assert "R-1" in shown and "Correct it" not in shown


def test_retrying_needs_the_permission_the_retry_button_needs(
    client: Client, account: IsometricAccount, facility: Facility
) -> None:
    viewer = make_user("vera")
    viewer.user_permissions.add(Permission.objects.get(codename="view_productionbatch"))
    account.members.add(viewer)
    log_in(client, viewer)
    failed = make_batch(facility, sync_status=SyncStatus.FAILED, supplier_reference_id="F-1")

    shown = page(client)
    assert "F-1" in shown
    assert 'name="batches"' not in shown and "Retry the chosen batches" not in shown
    assert retry(client, failed.pk).status_code == 403
    failed.refresh_from_db()
    assert failed.sync_status == SyncStatus.FAILED


def test_retrying_takes_a_post(client: Client, operator: User) -> None:
    assert client.get("/batches/retry/").status_code == 405


def test_retrying_needs_the_form_s_csrf_token(operator: User, facility: Facility) -> None:
    failed = make_batch(facility, sync_status=SyncStatus.FAILED)
    browser = Client(enforce_csrf_checks=True)
    log_in(browser, operator)

    assert retry(browser, failed.pk).status_code == 403

    failed.refresh_from_db()
    assert failed.sync_status == SyncStatus.FAILED
