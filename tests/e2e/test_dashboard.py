"""An operator opens the portal: the week's tonnes, the chart and its table, and a bulk retry."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from batches.models import ProductionBatch, SyncStatus
from portal.models import IsometricAccount
from tests.e2e.conftest import log_in
from tests.factories import make_batch, make_facility

Shoot = Callable[[Page, str], None]


def test_the_dashboard_charts_the_weeks_and_retries_failed_batches(
    page: Page, operator: User, account: IsometricAccount, shoot: Shoot
) -> None:
    now = timezone.now()
    kilns = [make_facility(f"Kiln {name}", account) for name in "ABC"]
    for week in range(0, 52, 3):
        for n, kiln in enumerate(kilns):
            make_batch(
                kiln,
                started_at=now - timedelta(weeks=week, hours=n + 1),
                mass_magnitude=Decimal(10 + week % 7 + 5 * n),
                sync_status=SyncStatus.SYNCED,
            )
    failed = [
        make_batch(
            kilns[0],
            started_at=now - timedelta(hours=1),
            supplier_reference_id=f"E2E-FAILED-{n}",
            sync_status=SyncStatus.FAILED,
        )
        for n in range(2)
    ]

    log_in(page, "olivia")

    # The cards side by side (at this width) start level.
    tops = page.locator(".columns > .card").evaluate_all(
        "cards => cards.map(card => card.getBoundingClientRect().top)"
    )
    assert len(tops) == 2 and tops[0] == tops[1]
    chart = page.get_by_role("img", name="Tonnes produced per week by facility")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(18 * 3)
    legend = page.locator(".legend li")
    expect(legend).to_have_text(["Kiln C", "Kiln B", "Kiln A"])
    table = page.get_by_role("table", name="Tonnes produced per week by facility")
    expect(table).to_be_hidden()
    page.get_by_text("The chart's figures as a table").click()
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(52)
    expect(table.locator("thead th")).to_have_text(
        ["Week of", "Kiln C", "Kiln B", "Kiln A", "All facilities"]
    )
    shoot(page, "dashboard-chart")

    for batch in failed:
        page.get_by_label(f"Retry {batch.supplier_reference_id}").check()
    page.get_by_role("button", name="Retry the chosen batches").click()

    expect(page.get_by_role("status")).to_contain_text(
        "2 batches will be sent to Isometric again in a moment."
    )
    assert set(
        ProductionBatch.objects.filter(pk__in=[b.pk for b in failed]).values_list(
            "sync_status", flat=True
        )
    ) == {SyncStatus.PENDING}
    expect(
        page.get_by_text("None: no batch was refused by Isometric or given up on.")
    ).to_be_visible()
    shoot(page, "dashboard-retried")


def test_the_dashboard_fits_a_phone_whatever_the_names(
    page: Page, operator: User, account: IsometricAccount, shoot: Shoot
) -> None:
    kiln = make_facility("Kiln" + "X" * 96, account)
    make_batch(
        kiln,
        started_at=timezone.now() - timedelta(hours=1),
        supplier_reference_id="R" * 100,
        sync_status=SyncStatus.FAILED,
        last_error="E" * 300,
    )
    page.set_viewport_size({"width": 390, "height": 800})
    log_in(page, "olivia")

    expect(page.get_by_role("img", name="Tonnes produced per week by facility")).to_be_visible()
    page.get_by_text("The chart's figures as a table").click()
    shoot(page, "dashboard-long-names")


def test_an_empty_dashboard(
    page: Page, operator: User, account: IsometricAccount, shoot: Shoot
) -> None:
    log_in(page, "olivia")

    expect(page.get_by_text("No batches produced in the last 52 weeks.")).to_be_visible()
    expect(page.get_by_role("img")).to_have_count(0)
    shoot(page, "dashboard-empty")
