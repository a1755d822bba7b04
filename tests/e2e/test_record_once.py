"""An operator saves a batch, goes Back to the form and saves it again: one batch is recorded."""

import re
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from batches.models import Facility, FeedstockType, ProductionBatch
from tests.e2e.conftest import log_in


def test_saving_again_after_going_back_records_one_batch(
    page: Page, operator: User, known_facility: Facility, known_feedstock_type: FeedstockType
) -> None:
    log_in(page, "olivia")
    page.get_by_role("link", name="Record a batch").first.click()
    reference = page.get_by_label("Supplier reference").input_value()
    assert re.fullmatch(r"PB-\d{8}-[0-9A-Z]{6}", reference), "generated when the form is shown"
    started = timezone.localtime() - timedelta(days=1)
    page.get_by_label("Facility").select_option(label="Kiln A")
    page.get_by_label("Production started").fill(f"{started:%Y-%m-%dT%H:%M}")
    page.get_by_label("Production ended").fill(f"{started + timedelta(hours=6):%Y-%m-%dT%H:%M}")
    page.get_by_label("Mass").fill("12.5")
    page.get_by_label(known_feedstock_type.name).check()
    page.get_by_role("button", name="Save batch").click()
    expect(page.get_by_role("status")).to_contain_text(f"Batch {reference} saved.")
    batch_url = page.url

    page.go_back()
    expect(page.get_by_label("Supplier reference")).to_have_value(reference)
    page.get_by_role("button", name="Save batch").click()

    expect(page.get_by_role("status")).to_have_text("This batch was already recorded; here it is.")
    assert page.url == batch_url
    assert list(ProductionBatch.objects.values_list("supplier_reference_id", flat=True)) == [
        reference
    ]
    page.get_by_role("link", name="Batches", exact=True).click()
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(reference)
