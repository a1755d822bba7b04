"""The tolerant reader, and the body the client sends."""

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from isometric.errors import MalformedResponse
from isometric.models import (
    FeedstockType,
    Mass,
    NewProductionBatch,
    Organisation,
    Page,
    ProductionBatch,
)


def batch_json(**changes: object) -> dict[str, object]:
    batch: dict[str, object] = {
        "id": "ptb_1GAFJ4C051S06E0Z",
        "facility_id": "fcl_1G8QT5ZAB1S0XSDW",
        "feedstock_type_ids": ["ftt_1D7KZ1P761S0G7BN", "ftt_1CSRJN4HHSBXZ3TK"],
        "supplier_reference_id": "REF-1",
        "kind": "biochar",
        "started_at": "2024-01-22T06:00:00Z",
        "ended_at": "2024-01-22T18:30:00.520641Z",
        "uploaded_at": "2024-01-23T11:56:48.520641Z",
        "display_name": "Kiln North 2024-01-22",
        "mass": {"magnitude": 12.5, "unit": "tonne", "standard_deviation": 0.4},
    }
    batch.update(changes)
    return {name: value for name, value in batch.items() if value is not ...}


def test_reads_a_production_batch() -> None:
    batch = ProductionBatch.from_json(batch_json())

    assert batch == ProductionBatch(
        id="ptb_1GAFJ4C051S06E0Z",
        facility_id="fcl_1G8QT5ZAB1S0XSDW",
        feedstock_type_ids=("ftt_1D7KZ1P761S0G7BN", "ftt_1CSRJN4HHSBXZ3TK"),
        supplier_reference_id="REF-1",
        kind="biochar",
        started_at=datetime(2024, 1, 22, 6, 0, tzinfo=UTC),
        ended_at=datetime(2024, 1, 22, 18, 30, 0, 520641, tzinfo=UTC),
        uploaded_at=datetime(2024, 1, 23, 11, 56, 48, 520641, tzinfo=UTC),
        display_name="Kiln North 2024-01-22",
        mass=Mass(magnitude=12.5, unit="tonne", standard_deviation=0.4),
    )


def test_ignores_fields_it_does_not_know() -> None:
    data = batch_json(carbon_content={"magnitude": 0.8}, verified=True)
    data["mass"] = {"magnitude": 3, "unit": "kg", "quantity_kind": "mass"}

    batch = ProductionBatch.from_json(data)

    assert batch.id == "ptb_1GAFJ4C051S06E0Z"
    assert batch.mass == Mass(magnitude=3.0, unit="kg", standard_deviation=None)


def test_reads_a_single_feedstock_type_id() -> None:
    data = batch_json(feedstock_type_ids=..., feedstock_type_id="ftt_1D7KZ1P761S0G7BN")

    assert ProductionBatch.from_json(data).feedstock_type_ids == ("ftt_1D7KZ1P761S0G7BN",)


def test_reads_feedstock_type_id_given_as_a_list() -> None:
    data = batch_json(feedstock_type_ids=..., feedstock_type_id=["ftt_1D7KZ1P761S0G7BN"])

    assert ProductionBatch.from_json(data).feedstock_type_ids == ("ftt_1D7KZ1P761S0G7BN",)


def test_tolerates_missing_optional_fields() -> None:
    data = batch_json(
        feedstock_type_ids=...,
        supplier_reference_id=None,
        kind=...,
        uploaded_at=...,
        display_name=...,
        mass={"magnitude": 1.5, "unit": "t"},
    )

    batch = ProductionBatch.from_json(data)

    assert batch.feedstock_type_ids == ()
    assert batch.supplier_reference_id is None
    assert batch.kind is None
    assert batch.uploaded_at is None
    assert batch.display_name is None
    assert batch.mass.standard_deviation is None


def test_timestamps_are_aware_and_those_without_an_offset_are_utc() -> None:
    batch = ProductionBatch.from_json(
        batch_json(started_at="2024-01-22T06:00:00", ended_at="2024-01-22T20:00:00+02:00")
    )

    assert batch.started_at == datetime(2024, 1, 22, 6, 0, tzinfo=UTC)
    assert batch.ended_at == datetime(2024, 1, 22, 18, 0, tzinfo=UTC)
    assert batch.ended_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-14:00",
        "2024-13-01T00:00:00Z",
        # In UTC, but not in every time zone a page may show them in.
        "0001-01-01T05:00:00Z",
        "9999-12-31T09:59:59Z",
    ],
)
def test_a_timestamp_not_every_time_zone_can_hold_is_refused(timestamp: str) -> None:
    with pytest.raises(MalformedResponse, match="'started_at' is not an ISO 8601 timestamp"):
        ProductionBatch.from_json(batch_json(started_at=timestamp))


def test_timestamps_near_the_edges_of_the_calendar_are_read_in_utc() -> None:
    batch = ProductionBatch.from_json(
        batch_json(started_at="0002-01-01T00:00:00-05:00", ended_at="9998-12-31T23:59:59+14:00")
    )

    assert batch.started_at == datetime(2, 1, 1, 5, 0, tzinfo=UTC)
    assert batch.ended_at == datetime(9998, 12, 31, 9, 59, 59, tzinfo=UTC)
    assert batch.started_at.tzinfo is UTC
    assert batch.ended_at.tzinfo is UTC


@pytest.mark.parametrize("magnitude", [math.nan, math.inf, -math.inf, 10**400])
def test_a_number_that_is_not_finite_is_refused(magnitude: float) -> None:
    with pytest.raises(MalformedResponse, match="'magnitude' is not a finite number"):
        ProductionBatch.from_json(batch_json(mass={"magnitude": magnitude, "unit": "t"}))


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"display_name": "x" * 101}, "'display_name' is not at most 100 characters"),
        ({"supplier_reference_id": "x" * 101}, "'supplier_reference_id' is not at most 100"),
        ({"mass": {"magnitude": 1, "unit": "t" * 21}}, "'unit' is not at most 20 characters"),
    ],
)
def test_a_text_longer_than_the_contract_allows_is_refused(
    changes: dict[str, object], complaint: str
) -> None:
    with pytest.raises(MalformedResponse, match=complaint):
        ProductionBatch.from_json(batch_json(**changes))


def test_texts_as_long_as_the_contract_allows_are_read() -> None:
    batch = ProductionBatch.from_json(
        batch_json(display_name="d" * 100, mass={"magnitude": 1, "unit": "u" * 20})
    )

    assert batch.display_name == "d" * 100
    assert batch.mass.unit == "u" * 20


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (["not", "an", "object"], "production batch is not a JSON object"),
        (batch_json(id=...), "production batch has no 'id'"),
        (batch_json(facility_id=None), "production batch has no 'facility_id'"),
        (batch_json(id=42), "'id' is not a string"),
        (batch_json(started_at="yesterday"), "'started_at' is not an ISO 8601 timestamp"),
        (batch_json(uploaded_at=1706010000), "'uploaded_at' is not an ISO 8601 timestamp"),
        (batch_json(mass=...), "production batch has no 'mass'"),
        (batch_json(mass="12 t"), "mass is not a JSON object"),
        (batch_json(mass={"unit": "t"}), "has no 'magnitude'"),
        (batch_json(mass={"magnitude": "12", "unit": "t"}), "'magnitude' is not a finite number"),
        (batch_json(mass={"magnitude": True, "unit": "t"}), "'magnitude' is not a finite number"),
        (batch_json(feedstock_type_ids=[1, 2]), "'feedstock_type_ids' is not a list of ids"),
    ],
)
def test_a_malformed_batch_raises_a_clear_error(data: object, complaint: str) -> None:
    with pytest.raises(MalformedResponse, match=complaint):
        ProductionBatch.from_json(data)


def page_json(**changes: object) -> dict[str, object]:
    page: dict[str, object] = {
        "nodes": [
            {"id": "ftt_1D7KZ1P761S0G7BN", "name": "Rice husk", "supplier_reference_id": None}
        ],
        "page_info": {
            "has_previous_page": False,
            "start_cursor": "abc",
            "has_next_page": True,
            "end_cursor": "abc",
        },
        "total_count": 11,
    }
    page.update(changes)
    return {name: value for name, value in page.items() if value is not ...}


def test_reads_a_page() -> None:
    page = Page.from_json(page_json(), FeedstockType.from_json)

    assert page.nodes == [FeedstockType("ftt_1D7KZ1P761S0G7BN", "Rice husk", None)]
    assert page.page_info.has_next_page is True
    assert page.page_info.has_previous_page is False
    assert page.page_info.end_cursor == "abc"
    assert page.total_count == 11


def test_a_page_without_total_count_is_still_read() -> None:
    assert Page.from_json(page_json(total_count=...), FeedstockType.from_json).total_count is None


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (page_json(nodes=...), "page has no 'nodes'"),
        (page_json(nodes={"id": "x"}), "'nodes' is not a list"),
        (page_json(page_info=...), "page has no 'page_info'"),
        (page_json(page_info={"has_previous_page": False}), "has no 'has_next_page'"),
        (page_json(total_count="11"), "'total_count' is not an integer"),
    ],
)
def test_a_malformed_page_raises_a_clear_error(data: object, complaint: str) -> None:
    with pytest.raises(MalformedResponse, match=complaint):
        Page.from_json(data, FeedstockType.from_json)


def test_a_page_keeps_the_nodes_it_can_read_and_names_the_others() -> None:
    good = batch_json()
    nodes = [
        batch_json(id="ptb_BADMASS000000000000", mass={"magnitude": "NaN", "unit": "t"}),
        good,
        {"name": "no id"},
        "not an object",
        batch_json(id="ptb_" + "X" * 500, started_at="yesterday"),
    ]

    page = Page.from_json(page_json(nodes=nodes), ProductionBatch.from_json)

    assert page.nodes == [ProductionBatch.from_json(good)]
    assert page.unreadable == (
        "'ptb_BADMASS000000000000': production batch: mass: 'magnitude' is not a finite number",
        "node 3: production batch has no 'id'",
        "node 4: production batch is not a JSON object",
        f"'ptb_{'X' * 36}': production batch: 'started_at' is not an ISO 8601 timestamp",
    )
    assert page.page_info.end_cursor == "abc"


def test_a_page_of_readable_nodes_has_nothing_unreadable() -> None:
    assert Page.from_json(page_json(), FeedstockType.from_json).unreadable == ()


def test_reads_an_organisation() -> None:
    data = {"id": "org_1GB56M1ST1S0GVNA", "name": "Char Co", "country": "GBR"}

    assert Organisation.from_json(data) == Organisation("org_1GB56M1ST1S0GVNA", "Char Co")


def test_the_create_body_is_the_contract_s_with_utc_timestamps() -> None:
    plus_two = timezone(timedelta(hours=2))
    batch = NewProductionBatch(
        facility_id="fcl_1G8QT5ZAB1S0XSDW",
        feedstock_type_ids=("ftt_1D7KZ1P761S0G7BN",),
        supplier_reference_id="REF-1",
        started_at=datetime(2024, 1, 22, 8, 0, tzinfo=plus_two),
        ended_at=datetime(2024, 1, 22, 20, 0, 0, 5, tzinfo=UTC),
        mass=Mass(magnitude=12.5, unit="tonne"),
    )

    assert batch.to_json() == {
        "facility_id": "fcl_1G8QT5ZAB1S0XSDW",
        "feedstock_type_ids": ["ftt_1D7KZ1P761S0G7BN"],
        "supplier_reference_id": "REF-1",
        "kind": "biochar",
        "started_at": "2024-01-22T06:00:00Z",
        "ended_at": "2024-01-22T20:00:00.000005Z",
        "mass": {"magnitude": 12.5, "unit": "tonne", "standard_deviation": None},
    }


def test_the_create_body_carries_a_display_name_when_there_is_one() -> None:
    batch = NewProductionBatch(
        facility_id="fcl_1G8QT5ZAB1S0XSDW",
        feedstock_type_ids=[],
        supplier_reference_id="REF-1",
        started_at=datetime(2024, 1, 22, tzinfo=UTC),
        ended_at=datetime(2024, 1, 23, tzinfo=UTC),
        mass=Mass(magnitude=1, unit="t"),
        display_name="January's first",
    )

    assert batch.to_json()["display_name"] == "January's first"


def test_the_create_body_refuses_naive_timestamps() -> None:
    batch = NewProductionBatch(
        facility_id="fcl_1G8QT5ZAB1S0XSDW",
        feedstock_type_ids=[],
        supplier_reference_id="REF-1",
        started_at=datetime(2024, 1, 22),
        ended_at=datetime(2024, 1, 23, tzinfo=UTC),
        mass=Mass(magnitude=1, unit="t"),
    )

    with pytest.raises(ValueError, match="started_at must be timezone-aware"):
        batch.to_json()
