"""An operator corrects a batch Isometric holds, seeing old beside new, then voids it."""

import re
from decimal import Decimal

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.e2e.conftest import log_in
from tests.e2e.test_batches import Shoot
from tests.factories import make_batch


def test_correct_a_synced_batch_then_void_it(
    page: Page,
    operator: User,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    emulator: Emulator,
    worker: None,
    shoot: Shoot,
) -> None:
    batch = make_batch(
        known_facility,
        [known_feedstock_type],
        account=account,
        supplier_reference_id="E2E-FIX-0001",
        mass_magnitude="12.5",
    )
    log_in(page, "olivia")
    page.goto(batch.get_absolute_url())
    badge = page.locator("#batch-status")
    expect(badge).to_have_text("Synced", timeout=15_000)
    [first] = emulator.production_batches()

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Mass", exact=True).fill("14")
    page.get_by_role("button", name="Save batch").click()
    differences = page.locator("table.differences")
    expect(differences.locator("tr", has_text="Mass")).to_contain_text(re.compile(r"12\.500\s*14"))
    expect(page.get_by_text(f"deletes {first['id']} in Isometric")).to_be_visible()
    shoot(page, "batch-correction")
    assert ProductionBatch.objects.get(pk=batch.pk).mass_magnitude == Decimal("12.5")
    page.get_by_role("button", name="Correct it in Isometric").click()

    expect(page.get_by_role("status").first).to_contain_text("corrected")
    expect(badge).to_have_text("Synced", timeout=15_000)
    page.get_by_text("Technical details").click()
    expect(page.get_by_text(f"Deleted {first['id']} in Isometric")).to_be_visible()
    [second] = emulator.production_batches()
    assert second["id"] != first["id"] and second["mass"]["magnitude"] == 14

    page.get_by_role("link", name="Void").click()
    page.get_by_label("Why is this batch void?").fill("Recorded on the wrong kiln")
    page.get_by_role("button", name="Void the batch").click()
    expect(badge).to_have_text("Voided", timeout=15_000)
    expect(page.get_by_text("Recorded on the wrong kiln").first).to_be_visible()
    shoot(page, "batch-voided")
    assert emulator.production_batches() == []
    assert ProductionBatch.objects.get(pk=batch.pk).sync_status == SyncStatus.VOIDED
