from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from batches import sync
from batches.forms import BatchFilterForm, ProductionBatchForm
from batches.models import Facility, FeedstockType, ProductionBatch
from portal.models import IsometricAccount
from tests.factories import batch_form_data, make_account, make_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(facility: Facility, feedstock_type: FeedstockType) -> dict[str, Any]:
    return batch_form_data(facility, feedstock_type)


def batch_form(data: dict[str, Any]) -> ProductionBatchForm:
    """The form as the operator of the one account there is gets it."""
    return ProductionBatchForm(data, accounts=IsometricAccount.objects.all())


def errors(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    form = batch_form({**data, **changes})
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


@pytest.mark.parametrize("unknown", ["fcl_DOESNOTEXIST00000", "999999", "9" * 20, "-1", "1.5"])
def test_unknown_facility_and_feedstock_type_are_refused(
    data: dict[str, Any], unknown: str
) -> None:
    found = errors(data, facility=unknown, feedstock_types=[unknown])
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


def test_duplicate_supplier_reference_is_a_field_error(
    data: dict[str, Any], account: IsometricAccount
) -> None:
    make_batch(account=account, supplier_reference_id="KILN-A-0001")
    assert errors(data) == {
        "supplier_reference_id": [
            "Another batch already has this supplier reference. Choose a different one."
        ]
    }


def test_blank_supplier_reference_is_generated_readable_and_unique(data: dict[str, Any]) -> None:
    references = set()
    for _ in range(20):
        form = batch_form({**data, "supplier_reference_id": ""})
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
        form = batch_form(
            {**data, "started_at": "2026-07-01T12:00", "ended_at": "2026-07-01T18:00"}
        )
        assert form.is_valid(), form.errors
        batch = form.save()
    batch.refresh_from_db()
    assert batch.started_at.isoformat() == "2026-07-01T09:00:00+00:00"


def filter_form(data: dict[str, Any]) -> BatchFilterForm:
    return BatchFilterForm(data, IsometricAccount.objects.all())


def test_filter_form_reports_bad_values_at_their_field_and_keeps_the_good_ones() -> None:
    form = filter_form(
        {"q": "kiln", "facility": "fcl_nope", "sync_status": "lost", "started_from": "garbage"}
    )
    assert not form.is_valid()
    assert set(form.errors) == {"facility", "sync_status", "started_from"}
    assert form.filters() == {"q": "kiln"}


def test_filter_form_refuses_a_reversed_date_range() -> None:
    form = filter_form({"started_from": "2026-05-02", "started_to": "2026-05-01"})
    assert not form.is_valid()
    assert form.errors == {"started_to": ["The end of the range is before its start."]}
    assert "started_to" not in form.filters()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mass_magnitude", "999999999999.999999"),
        ("mass_magnitude", "1000000000"),
        ("mass_standard_deviation", "999999999999.999999"),
        ("mass_magnitude", "0.0000001"),
        ("started_at", "0001-01-01T00:00"),
        ("started_at", "1899-12-31T23:59"),
        ("ended_at", "9999-12-31T23:59"),
    ],
)
def test_values_no_database_stores_are_refused_at_their_field(
    data: dict[str, Any], field: str, value: str
) -> None:
    assert field in errors(data, confirm_unusual="on", **{field: value})


UNUSUAL = "Some values are unusual. Check them, then confirm them below to save."


@pytest.mark.parametrize(
    ("changes", "warning"),
    [
        ({"mass_magnitude": "500.5"}, "The mass is over 500 tonnes for one batch."),
        ({"mass_magnitude": "600000", "mass_unit": "kg"}, "over 500 tonnes"),
        ({"mass_standard_deviation": "13"}, "standard deviation is larger than the mass"),
        ({"started_at": "2019-06-01T08:00", "ended_at": "2019-06-01T18:00"}, "before 2020"),
        ({"started_at": "2025-06-01T08:00", "ended_at": "2025-06-05T08:01"}, "more than 3 days"),
    ],
)
def test_unusual_values_are_saved_only_once_the_operator_confirms_them(
    data: dict[str, Any], changes: dict[str, str], warning: str
) -> None:
    form = batch_form({**data, **changes})
    assert not form.is_valid()
    assert form.non_field_errors() == [UNUSUAL]
    assert any(warning in each for each in form.unusual)

    confirmed = batch_form({**data, **changes, "confirm_unusual": "on"})
    assert confirmed.is_valid(), confirmed.errors


def test_usual_values_need_no_confirmation(data: dict[str, Any]) -> None:
    form = batch_form({**data, "mass_magnitude": "500000", "mass_unit": "kg"})
    assert form.is_valid(), form.errors
    assert form.unusual == []


@pytest.mark.parametrize(
    "params",
    [
        {"started_to": "9999-12-31"},
        {"started_from": "0001-01-01"},
        {"facility": "99999999999999999999"},
        {"feedstock_type": "-3"},
        {"after": "not-a-cursor"},
        {"before": "MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHwx"},  # 0001-01-01T00:00:00+14:00|1
    ],
)
def test_filter_values_out_of_range_are_field_errors(params: dict[str, str]) -> None:
    form = filter_form(params)
    assert not form.is_valid()
    assert set(form.errors) == set(params)
    assert form.filters() == {}


def test_the_largest_mass_accepted_reads_back_everywhere(
    data: dict[str, Any], operator_client: Any
) -> None:
    form = batch_form(
        {
            **data,
            "mass_magnitude": "999999999.999999",
            "mass_standard_deviation": "999999999.999999",
            "confirm_unusual": "on",
        }
    )
    assert form.is_valid(), form.errors
    batch = form.save()

    assert ProductionBatch.objects.get(pk=batch.pk).mass_magnitude == Decimal("999999999.999999")
    assert operator_client.get("/batches/").status_code == 200
    assert operator_client.get(f"/batches/{batch.pk}/").status_code == 200
    [claim] = sync.claim_due(10)
    assert claim.batch.mass_standard_deviation == Decimal("999999999.999999")


# --- A reference like another in all but capital letters ---------------------------------------


def test_a_reference_differing_only_in_case_needs_confirming(data: dict[str, Any]) -> None:
    make_batch(supplier_reference_id="Kiln-A-0001")
    form = batch_form({**data, "supplier_reference_id": "KILN-a-0001"})
    assert not form.is_valid()
    assert form.non_field_errors() == [UNUSUAL]
    assert form.unusual == [
        "Another batch of this account has the supplier reference “Kiln-A-0001”, which "
        "differs from this one only in capital letters."
    ]
    confirmed = batch_form({**data, "supplier_reference_id": "KILN-a-0001", "confirm_unusual": "1"})
    assert confirmed.is_valid(), confirmed.errors


@pytest.mark.parametrize("other", ["Kiln-A-0002", "Kíln-A-0001", "Kiln-A-0001 "])
def test_references_differing_otherwise_need_no_confirming(
    data: dict[str, Any], other: str
) -> None:
    make_batch(supplier_reference_id=other)
    assert batch_form({**data, "supplier_reference_id": "KILN-A-0001"}).is_valid()


def test_non_ascii_capitals_count_as_case_on_both_databases(data: dict[str, Any]) -> None:
    make_batch(supplier_reference_id="ÉTÉ-1")
    form = batch_form({**data, "supplier_reference_id": "été-1"})
    assert not form.is_valid()
    assert "“ÉTÉ-1”" in form.unusual[0]


def test_another_account_s_reference_needs_no_confirming(
    data: dict[str, Any], facility: Facility
) -> None:
    make_batch(supplier_reference_id="kiln-a-0001", account=make_account())
    form = batch_form(
        {**data, "supplier_reference_id": "KILN-A-0001", "account": facility.account_id}
    )
    assert form.is_valid(), form.errors


def test_editing_a_batch_warns_only_when_its_reference_changes(data: dict[str, Any]) -> None:
    make_batch(supplier_reference_id="kiln-a-0001")
    edited = make_batch(supplier_reference_id="KILN-A-0001")
    unchanged = ProductionBatchForm(
        {**data, "supplier_reference_id": "KILN-A-0001", "mass_magnitude": "13"},
        instance=edited,
        accounts=IsometricAccount.objects.all(),
    )
    assert unchanged.is_valid(), unchanged.errors
    renamed = ProductionBatchForm(
        {**data, "supplier_reference_id": "Kiln-A-0001"},
        instance=edited,
        accounts=IsometricAccount.objects.all(),
    )
    assert not renamed.is_valid()
    assert [each.count("“kiln-a-0001”") for each in renamed.unusual] == [1]
