from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from batches.forms import BatchFilterForm, ProductionBatchForm
from batches.models import Facility, FeedstockType
from tests.factories import batch_form_data, make_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(facility: Facility, feedstock_type: FeedstockType) -> dict[str, Any]:
    return batch_form_data(facility, feedstock_type)


def errors(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    form = ProductionBatchForm({**data, **changes})
    form.is_valid()
    return form.errors


def test_valid_batch_has_no_errors(data: dict[str, Any]) -> None:
    assert errors(data) == {}


def test_end_must_be_after_start(data: dict[str, Any]) -> None:
    assert errors(data, ended_at=data["started_at"]) == {
        "ended_at": ["Production must end after it started."]
    }


@pytest.mark.parametrize("field", ["started_at", "ended_at"])
def test_times_cannot_be_in_the_future(data: dict[str, Any], field: str) -> None:
    future = (timezone.localtime() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    assert "This time is in the future." in errors(data, **{field: future})[field]


@pytest.mark.parametrize("mass", ["0", "-1", "-0.001"])
def test_mass_must_be_positive(data: dict[str, Any], mass: str) -> None:
    assert errors(data, mass_magnitude=mass) == {
        "mass_magnitude": ["Mass must be greater than zero."]
    }


def test_standard_deviation_cannot_be_negative(data: dict[str, Any]) -> None:
    assert errors(data, mass_standard_deviation="-0.5") == {
        "mass_standard_deviation": ["Standard deviation cannot be negative."]
    }


def test_standard_deviation_zero_is_allowed(data: dict[str, Any]) -> None:
    assert errors(data, mass_standard_deviation="0") == {}


def test_unit_must_come_from_the_configured_list(data: dict[str, Any], settings: Any) -> None:
    assert "mass_unit" in errors(data, mass_unit="lb")
    settings.BATCH_MASS_UNITS = ["lb"]
    assert errors(data, mass_unit="lb") == {}


def test_at_least_one_feedstock_type(data: dict[str, Any]) -> None:
    assert errors(data, feedstock_types=[]) == {
        "feedstock_types": ["Choose at least one feedstock type."]
    }


def test_unknown_facility_and_feedstock_type_are_refused(data: dict[str, Any]) -> None:
    found = errors(data, facility="fcl_DOESNOTEXIST00000", feedstock_types=["999999"])
    assert set(found) == {"facility", "feedstock_types"}


@pytest.mark.parametrize("field", ["facility", "started_at", "ended_at", "mass_magnitude"])
def test_required_fields(data: dict[str, Any], field: str) -> None:
    assert "This field is required." in errors(data, **{field: ""})[field]


def test_supplier_reference_is_limited_to_100_characters(data: dict[str, Any]) -> None:
    assert "supplier_reference_id" in errors(data, supplier_reference_id="x" * 101)
    assert errors(data, supplier_reference_id="x" * 100) == {}


def test_display_name_is_limited_to_100_characters(data: dict[str, Any]) -> None:
    assert "display_name" in errors(data, display_name="x" * 101)


def test_malformed_date_is_a_field_error(data: dict[str, Any]) -> None:
    assert errors(data, started_at="31/02/2026 25:61") == {
        "started_at": ["Enter a valid date/time."]
    }


def test_mass_with_too_many_digits_is_a_field_error(data: dict[str, Any]) -> None:
    assert "mass_magnitude" in errors(data, mass_magnitude="1" * 40)
    assert "mass_magnitude" in errors(data, mass_magnitude="not a number")


def test_duplicate_supplier_reference_is_a_field_error(data: dict[str, Any]) -> None:
    make_batch(supplier_reference_id="KILN-A-0001")
    assert errors(data) == {
        "supplier_reference_id": [
            "Another batch already has this supplier reference. Choose a different one."
        ]
    }


def test_blank_supplier_reference_is_generated_readable_and_unique(data: dict[str, Any]) -> None:
    references = set()
    for _ in range(20):
        form = ProductionBatchForm({**data, "supplier_reference_id": ""})
        assert form.is_valid(), form.errors
        batch = form.save()
        references.add(batch.supplier_reference_id)
    assert len(references) == 20
    started = timezone.localtime() - timedelta(days=2)
    assert all(ref.startswith(f"PB-{started:%Y%m%d}-") and len(ref) == 18 for ref in references)


def test_times_are_read_in_the_portal_time_zone_and_stored_in_utc(
    data: dict[str, Any], settings: Any
) -> None:
    settings.TIME_ZONE = "Europe/Helsinki"
    with timezone.override("Europe/Helsinki"):
        form = ProductionBatchForm(
            {**data, "started_at": "2026-07-01T12:00", "ended_at": "2026-07-01T18:00"}
        )
        assert form.is_valid(), form.errors
        batch = form.save()
    batch.refresh_from_db()
    assert batch.started_at.isoformat() == "2026-07-01T09:00:00+00:00"


def test_filter_form_reports_bad_values_at_their_field_and_keeps_the_good_ones() -> None:
    form = BatchFilterForm(
        {"q": "kiln", "facility": "fcl_nope", "sync_status": "lost", "started_from": "garbage"}
    )
    assert not form.is_valid()
    assert set(form.errors) == {"facility", "sync_status", "started_from"}
    assert form.filters() == {"q": "kiln"}


def test_filter_form_refuses_a_reversed_date_range() -> None:
    form = BatchFilterForm({"started_from": "2026-05-02", "started_to": "2026-05-01"})
    assert not form.is_valid()
    assert form.errors == {"started_to": ["The end of the range is before its start."]}
    assert "started_to" not in form.filters()
