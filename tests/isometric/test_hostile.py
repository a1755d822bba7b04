"""The client against a hostile Isometric over real HTTP: every way it misbehaves ends as an
IsometricError or a readable page, by the deadline, in bounded memory, without leaking secrets."""

import resource
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from isometric.client import SCAN_PAUSE, SCAN_PAUSE_TOTAL, Client
from isometric.errors import (
    AuthenticationFailed,
    IsometricError,
    MalformedResponse,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)
from isometric.http_errors import MAX_RETRY_AFTER
from isometric.models import Mass, NewProductionBatch
from tests.hostile import FACILITY_ID, FEEDSTOCK_TYPE_IDS, HostileIsometric
from tests.isometric.factories import STARTED_AT


@pytest.fixture
def client(hostile: HostileIsometric) -> Iterator[Client]:
    with Client(
        hostile.base_url, hostile.client_secret, hostile.access_token, timeout=(1.0, 5.0)
    ) as client:
        yield client


def new_batch(supplier_reference_id: str = "REF-1") -> NewProductionBatch:
    return NewProductionBatch(
        facility_id=FACILITY_ID,
        feedstock_type_ids=FEEDSTOCK_TYPE_IDS,
        supplier_reference_id=supplier_reference_id,
        started_at=STARTED_AT,
        ended_at=STARTED_AT,
        mass=Mass(12.5, "tonne"),
    )


def test_the_normal_server_serves_every_route(hostile: HostileIsometric, client: Client) -> None:
    created = client.create_production_batch(new_batch("REF-NEW"))

    assert created.id.startswith("ptb_") and len(created.id) >= 24
    assert client.get_production_batch(created.id) == created
    assert client.find_production_batch("REF-NEW") == created
    assert client.find_production_batch("HOSTILE-2") is not None
    assert len(list(client.iter_production_batches(page_size=2))) == 4
    assert len(list(client.iter_feedstock_types())) == 2
    assert client.get_organisation().name == "Hostile Char Co"
    assert hostile.received[0].headers["X-Client-Secret"] == hostile.client_secret


def test_a_fixed_created_id(hostile: HostileIsometric, client: Client) -> None:
    hostile.created_id = "ptb_FIXED0000000000000000"

    assert client.create_production_batch(new_batch()).id == "ptb_FIXED0000000000000000"


@pytest.mark.parametrize("mode", ["html", "truncated_json", "deep_json"])
def test_a_body_that_cannot_be_read_as_json_is_malformed(
    hostile: HostileIsometric, client: Client, mode: str
) -> None:
    hostile.mode = mode
    for call in (client.get_organisation, client.list_production_batches):
        with pytest.raises(MalformedResponse, match="the response is not JSON") as caught:
            call()
        assert caught.value.status == 200


def test_an_empty_body_is_malformed(hostile: HostileIsometric, client: Client) -> None:
    hostile.mode = "empty_body"

    with pytest.raises(MalformedResponse, match="not JSON"):
        client.create_production_batch(new_batch())


@pytest.mark.parametrize("mode", ["html", "truncated_json", "empty_body", "deep_json"])
@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationFailed), (422, ValidationFailed), (400, IsometricError)],
)
def test_an_error_body_that_cannot_be_read_is_still_its_status_s_error(
    hostile: HostileIsometric,
    client: Client,
    mode: str,
    status: int,
    error: type[IsometricError],
) -> None:
    hostile.mode = mode
    hostile.error_status = status

    with pytest.raises(error) as caught:
        client.create_production_batch(new_batch())

    assert caught.value.status == status


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("nan_numbers", "'magnitude' is not a finite number"),
        ("year_1", "'started_at' is not an ISO 8601 timestamp"),
        ("year_9999", "'started_at' is not an ISO 8601 timestamp"),
        ("long_strings", "is not at most"),
    ],
)
def test_a_bad_node_is_left_out_of_its_page(
    hostile: HostileIsometric, client: Client, mode: str, reason: str
) -> None:
    hostile.mode = mode
    pages = [client.list_production_batches(first=2) for _ in range(4)]

    for page in pages:
        assert [batch.supplier_reference_id for batch in page.nodes] == ["HOSTILE-1", "HOSTILE-2"]
        assert len(page.unreadable) == 1
        assert reason in page.unreadable[0]
        assert page.unreadable[0].startswith("'ptb_HOSTILE")
    with pytest.raises(MalformedResponse, match=reason):
        client.create_production_batch(new_batch())


def test_nan_infinity_and_1e309_are_each_refused(hostile: HostileIsometric, client: Client) -> None:
    hostile.mode = "nan_numbers"
    unreadable = [client.list_production_batches().unreadable for _ in range(4)]

    assert all(len(reasons) == 1 and "finite number" in reasons[0] for reasons in unreadable)


def test_every_timestamp_read_is_in_utc(hostile: HostileIsometric, client: Client) -> None:
    hostile.mode = "year_1"
    page = client.list_production_batches()

    for batch in page.nodes:
        for moment in (batch.started_at, batch.ended_at, batch.uploaded_at):
            assert moment is not None
            assert moment.utcoffset() == timedelta(0)


def test_a_taken_id_comes_back_as_it_is(hostile: HostileIsometric, client: Client) -> None:
    hostile.mode = "taken_id"

    assert client.create_production_batch(new_batch()).id == hostile.taken_id
    assert client.get_production_batch("ptb_ANY000000000000000").id == hostile.taken_id
    page = client.list_production_batches()
    assert hostile.taken_id in [batch.id for batch in page.nodes]
    assert page.unreadable == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("99999999999999", MAX_RETRY_AFTER),
        ("1e15", MAX_RETRY_AFTER),
        ("1e400", MAX_RETRY_AFTER),
        ("inf", MAX_RETRY_AFTER),
        ("-inf", 0.0),
        ("-5", 0.0),
        ("2.5", 2.5),
        ("nan", None),
        ("soon", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("Mon, 01 Jan 0001 00:00:00 +2359", 0.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
    ],
)
def test_retry_after_is_bounded(
    hostile: HostileIsometric, client: Client, value: str, expected: float | None
) -> None:
    hostile.mode = "retry_after_huge"
    hostile.retry_after = value

    with pytest.raises(RateLimited) as caught:
        client.get_organisation()

    assert caught.value.retry_after == expected


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("retry_after_huge", MAX_RETRY_AFTER),
        ("retry_after_negative", 0.0),
        ("retry_after_date", MAX_RETRY_AFTER),
    ],
)
def test_the_retry_after_modes(
    hostile: HostileIsometric, client: Client, mode: str, expected: float
) -> None:
    hostile.mode = mode

    with pytest.raises(RateLimited) as caught:
        client.list_production_batches()

    assert caught.value.retry_after == expected


@pytest.mark.parametrize("mode", ["drip", "drip_headers"])
def test_a_dripping_server_fails_by_the_deadline(hostile: HostileIsometric, mode: str) -> None:
    hostile.mode = mode
    hostile.drip_interval = 0.2  # each byte arrives well within the read timeout
    with Client(hostile.base_url, "s", "t", timeout=(1.0, 1.0), deadline=2.0) as client:
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            client.get_organisation()
        elapsed = time.monotonic() - started

    assert caught.value.timed_out
    assert caught.value.may_have_reached_server
    assert 1.9 <= elapsed < 2.0 + 1.5


def test_a_slow_but_steady_answer_within_the_deadline_is_read(hostile: HostileIsometric) -> None:
    hostile.mode = "drip"
    hostile.drip_interval = 0.0
    with Client(hostile.base_url, "s", "t", deadline=5.0) as client:
        assert client.get_organisation().name == "Hostile Char Co"
        hostile.mode = "normal"
        client.get_organisation()


def test_a_huge_answer_is_refused_in_bounded_memory(hostile: HostileIsometric) -> None:
    hostile.mode = "huge"
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with Client(hostile.base_url, "s", "t", max_response_bytes=5 * 1024 * 1024) as client:
        with pytest.raises(MalformedResponse, match="answer too large") as caught:
            client.list_production_batches()
        hostile.mode = "normal"
        assert client.get_organisation().name == "Hostile Char Co"
    peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024

    assert caught.value.status == 200
    assert peak_growth_mib < 40


def test_a_small_cap_refuses_an_ordinary_answer(hostile: HostileIsometric) -> None:
    with (
        Client(hostile.base_url, "s", "t", max_response_bytes=100) as client,
        pytest.raises(MalformedResponse, match=r"answer too large \(over 100 bytes\)"),
    ):
        client.list_production_batches()


def test_a_redirect_elsewhere_is_not_followed(hostile: HostileIsometric, client: Client) -> None:
    hostile.mode = "redirect"

    with pytest.raises(IsometricError) as caught:
        client.get_organisation()

    assert caught.value.status == 302
    assert len(hostile.received) == 1
    assert hostile.elsewhere_received == []


def test_the_redirect_target_records_what_reaches_it(hostile: HostileIsometric) -> None:
    with (
        Client(hostile.elsewhere_url + "/mrv/v0", "s", "t") as client,
        pytest.raises(IsometricError),
    ):
        client.get_organisation()

    assert hostile.elsewhere_received[0].headers["X-Client-Secret"] == "s"


def test_a_401_then_a_success(hostile: HostileIsometric, client: Client) -> None:
    hostile.mode = "unauthorized_once"

    with pytest.raises(AuthenticationFailed):
        client.get_organisation()
    assert client.get_organisation().name == "Hostile Char Co"
    assert client.get_organisation().name == "Hostile Char Co"


def test_an_echoed_part_of_the_secret_is_redacted(
    hostile: HostileIsometric, client: Client
) -> None:
    hostile.mode = "echo_secret"
    raised: list[IsometricError] = []
    for call in (client.get_organisation, lambda: client.create_production_batch(new_batch())):
        with pytest.raises(IsometricError) as caught:
            call()
        raised.append(caught.value)

    assert "is not valid" in str(raised[0])
    assert isinstance(raised[1], ValidationFailed)
    assert "[redacted]" in str(raised[1]) and "is bad" in str(raised[1])
    secret = hostile.client_secret
    for text in [str(error) for error in raised] + [repr(raised[1].field_errors)]:
        assert "[redacted]" in text
        for start in range(len(secret) - 7):
            assert secret[start : start + 8] not in text


def more_batches(hostile: HostileIsometric, count: int) -> None:
    hostile.batches.extend(
        dict(hostile.batches[0], id=f"ptb_MORE{n:016d}", supplier_reference_id=f"M-{n}")
        for n in range(count)
    )


def test_find_retries_each_failed_page_of_its_scan(
    hostile: HostileIsometric, client: Client
) -> None:
    more_batches(hostile, 120)
    hostile.mode = "flaky_pages"
    started = time.monotonic()

    found = client.find_production_batch("M-119")

    assert found is not None and found.id == "ptb_MORE0000000000000119"
    # The filtered page, then three pages of the scan, each failing once first.
    assert len(hostile.received) == 7
    assert time.monotonic() - started < SCAN_PAUSE * 3 + 1.0


def test_find_gives_up_when_a_page_keeps_failing(
    hostile: HostileIsometric, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("isometric.client.SCAN_RETRIES", 0)
    more_batches(hostile, 120)
    hostile.mode = "flaky_pages"

    with pytest.raises(ServerError):
        client.find_production_batch("M-119")


def test_find_gives_up_rather_than_wait_long(hostile: HostileIsometric, client: Client) -> None:
    more_batches(hostile, 120)
    hostile.mode = "flaky_pages"
    hostile.retry_after = str(SCAN_PAUSE_TOTAL + 1)
    started = time.monotonic()

    with pytest.raises(ServerError) as caught:
        client.find_production_batch("M-119")

    assert caught.value.retry_after == SCAN_PAUSE_TOTAL + 1
    assert time.monotonic() - started < 1.0
    assert len(hostile.received) == 2


def test_find_waits_a_short_retry_after(hostile: HostileIsometric, client: Client) -> None:
    more_batches(hostile, 120)
    hostile.mode = "flaky_pages"
    hostile.retry_after = "0.1"
    started = time.monotonic()

    assert client.find_production_batch("M-119") is not None
    assert 0.3 <= time.monotonic() - started < 0.3 + 1.0
