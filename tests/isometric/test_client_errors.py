"""Every error the client raises, each provoked for real: by the emulator or a canned server."""

import json
import logging
import socket
from datetime import UTC, datetime

import pytest

from isometric.client import Client
from isometric.emulator import Emulator
from isometric.emulator.credentials import make_access_token
from isometric.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidCursor,
    IsometricError,
    MalformedResponse,
    NotFound,
    RateLimited,
    RepeatedCursor,
    ServerError,
    TransportError,
    ValidationFailed,
)
from isometric.models import NewProductionBatch
from tests.isometric.canned_server import CannedServer
from tests.isometric.factories import new_batch

SECRET = "s3cret-client-value"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJvcmciOiJvcmdfWCJ9.c2lnbmF0dXJlLXZhbHVl"


def refused(client: Client, new: NewProductionBatch) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        client.create_production_batch(new)
    return caught.value


def test_validation_failed_names_each_field(emulator: Emulator, isometric_client: Client) -> None:
    new = new_batch(emulator)
    broken = NewProductionBatch(
        facility_id="fcl_short",
        feedstock_type_ids=new.feedstock_type_ids,
        supplier_reference_id="",
        started_at=new.started_at,
        ended_at=new.ended_at,
        mass=new.mass,
    )

    error = refused(isometric_client, broken)

    assert error.status == 422
    assert [(e.loc, e.msg) for e in error.field_errors] == [
        (("body", "facility_id"), "String should have at least 20 characters"),
        (("body", "supplier_reference_id"), "String should have at least 1 character"),
    ]
    assert "body.facility_id: String should have at least 20 characters" in str(error)
    assert not isinstance(error, InvalidCursor)


def test_an_unknown_facility_is_a_validation_failure(
    emulator: Emulator, isometric_client: Client
) -> None:
    new = new_batch(emulator)
    unknown = NewProductionBatch(
        facility_id="fcl_0000000000000000",
        feedstock_type_ids=new.feedstock_type_ids,
        supplier_reference_id="REF-1",
        started_at=new.started_at,
        ended_at=new.ended_at,
        mass=new.mass,
    )

    error = refused(isometric_client, unknown)

    assert [(e.loc, e.msg) for e in error.field_errors] == [
        (("body", "facility_id"), "Facility not found")
    ]


def test_a_tampered_cursor_is_an_invalid_cursor(
    emulator: Emulator, isometric_client: Client
) -> None:
    emulator.add_production_batches(3)
    cursor = isometric_client.list_production_batches(first=1).page_info.end_cursor
    assert cursor is not None
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")

    with pytest.raises(InvalidCursor) as caught:
        isometric_client.list_production_batches(first=1, after=tampered)
    with pytest.raises(InvalidCursor):
        isometric_client.list_production_batches(last=1, before="not-a-cursor")

    assert caught.value.status == 422
    assert caught.value.field_errors[0].loc == ("query", "after")


def test_a_page_size_out_of_range_is_a_validation_failure(isometric_client: Client) -> None:
    with pytest.raises(ValidationFailed) as caught:
        isometric_client.list_production_batches(first=51)

    assert caught.value.field_errors[0].loc == ("query", "first")
    assert not isinstance(caught.value, InvalidCursor)


def test_a_wrong_client_secret_fails_authentication(emulator: Emulator) -> None:
    with (
        Client(emulator.base_url, "wrong-secret", emulator.access_token) as client,
        pytest.raises(AuthenticationFailed) as caught,
    ):
        client.get_organisation()

    assert caught.value.status == 401


def test_another_organisation_s_token_is_forbidden(emulator: Emulator) -> None:
    token = make_access_token("org_0000000000000000", datetime.now(UTC))

    with (
        Client(emulator.base_url, emulator.client_secret, token) as client,
        pytest.raises(AuthenticationFailed) as caught,
    ):
        client.get_organisation()

    assert caught.value.status == 403


def test_not_found(isometric_client: Client) -> None:
    with pytest.raises(NotFound) as caught:
        isometric_client.get_production_batch("ptb_0000000000000000")
    with pytest.raises(NotFound):
        isometric_client.delete_production_batch("ptb_0000000000000000")

    assert caught.value.status == 404


@pytest.mark.parametrize("status", [409, 422])
def test_a_duplicate_supplier_reference_is_a_conflict(
    emulator: Emulator, isometric_client: Client, status: int
) -> None:
    emulator.configure(duplicate_status=status)
    isometric_client.create_production_batch(new_batch(emulator, "REF-1"))

    with pytest.raises(Conflict) as caught:
        isometric_client.create_production_batch(new_batch(emulator, "REF-1"))

    assert caught.value.status == status
    assert len(emulator.production_batches()) == 1


def test_rate_limited_says_when_to_retry(emulator: Emulator, isometric_client: Client) -> None:
    emulator.configure(next_faults=["rate_limited"], retry_after_seconds=7)

    with pytest.raises(RateLimited) as caught:
        isometric_client.get_organisation()

    assert caught.value.status == 429
    assert caught.value.retry_after == 7


def test_rate_limited_reads_retry_after_as_an_http_date(
    emulator: Emulator, isometric_client: Client
) -> None:
    emulator.configure(
        next_faults=["rate_limited"], retry_after_seconds=30, retry_after_as_http_date=True
    )

    with pytest.raises(RateLimited) as caught:
        isometric_client.get_organisation()

    # An HTTP date has whole seconds only.
    assert caught.value.retry_after is not None
    assert 28 <= caught.value.retry_after <= 30


def test_requests_over_the_rate_limit_are_rate_limited(
    emulator: Emulator, isometric_client: Client
) -> None:
    emulator.configure(rate_limit_rps=2)

    with pytest.raises(RateLimited) as caught:
        for _ in range(10):
            isometric_client.get_organisation()

    assert caught.value.retry_after == 1
    assert emulator.stats()["requests"] == {"GET /organisation": {"200": 2, "429": 1}}


@pytest.mark.parametrize(("fault", "status"), [("error_500", 500), ("error_503", 503)])
def test_server_errors(
    emulator: Emulator, isometric_client: Client, fault: str, status: int
) -> None:
    emulator.configure(next_faults=[fault], retry_after_seconds=4)

    with pytest.raises(ServerError) as caught:
        isometric_client.create_production_batch(new_batch(emulator))

    assert caught.value.status == status
    assert caught.value.retry_after == (4 if status == 503 else None)
    assert emulator.production_batches() == []


def test_a_lost_response_may_have_reached_the_server(
    emulator: Emulator, isometric_client: Client
) -> None:
    emulator.configure(next_faults=["lost_response"])

    with pytest.raises(TransportError) as caught:
        isometric_client.create_production_batch(new_batch(emulator, "REF-LOST"))

    assert caught.value.may_have_reached_server
    assert caught.value.status is None
    # It did: the batch is stored, and the look-up the sync service does next finds it.
    assert emulator.stats()["created_by_supplier_reference_id"] == {"REF-LOST": 1}
    assert isometric_client.find_production_batch("REF-LOST") is not None


def test_a_reset_connection_may_have_reached_the_server(
    emulator: Emulator, isometric_client: Client
) -> None:
    emulator.configure(next_faults=["reset"])

    with pytest.raises(TransportError) as caught:
        isometric_client.create_production_batch(new_batch(emulator, "REF-RESET"))

    # The client cannot tell; the emulator knows nothing was stored.
    assert caught.value.may_have_reached_server
    assert emulator.production_batches() == []
    assert isometric_client.find_production_batch("REF-RESET") is None


def test_a_read_timeout_may_have_reached_the_server(emulator: Emulator) -> None:
    emulator.configure(latency_ms=300)
    slow_reader = Client(
        emulator.base_url, emulator.client_secret, emulator.access_token, timeout=(1.0, 0.1)
    )
    with slow_reader as client, pytest.raises(TransportError) as caught:
        client.get_organisation()

    assert caught.value.may_have_reached_server
    assert caught.value.timed_out
    assert "no answer in time" in str(caught.value)


def test_a_refused_connection_did_not_reach_the_server() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    # Nothing listens on the port now.

    with (
        Client(f"http://127.0.0.1:{port}/mrv/v0", SECRET, TOKEN) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.get_organisation()

    assert not caught.value.may_have_reached_server
    assert not caught.value.timed_out


def test_a_body_that_is_not_json_is_malformed() -> None:
    with (
        CannedServer(200, b"<html>Gateway says hello</html>") as server,
        Client(server.url, SECRET, TOKEN) as client,
        pytest.raises(MalformedResponse) as caught,
    ):
        client.get_organisation()

    assert caught.value.status == 200
    assert "GET /organisation: the response is not JSON" in str(caught.value)


def test_a_body_missing_fields_is_malformed() -> None:
    with (
        CannedServer(200, b'{"nodes": [{"id": "ptb_1GAFJ4C051S06E0Z"}]}') as server,
        Client(server.url, SECRET, TOKEN) as client,
        pytest.raises(MalformedResponse, match="GET /production_batches: page has no"),
    ):
        client.list_production_batches()


def test_a_repeated_cursor_stops_the_iteration() -> None:
    page = {
        "nodes": [],
        "page_info": {
            "has_previous_page": False,
            "start_cursor": None,
            "has_next_page": True,
            "end_cursor": "same-again",
        },
        "total_count": 0,
    }
    with (
        CannedServer(200, json.dumps(page).encode()) as server,
        Client(server.url, SECRET, TOKEN) as client,
        pytest.raises(RepeatedCursor, match="same-again"),
    ):
        list(client.iter_production_batches())

    assert len(server.received) == 2


def test_redirects_are_not_followed() -> None:
    with (
        CannedServer(302, b"", {"Location": "http://elsewhere.invalid/"}) as server,
        Client(server.url, SECRET, TOKEN) as client,
        pytest.raises(IsometricError) as caught,
    ):
        client.get_organisation()

    assert caught.value.status == 302
    assert len(server.received) == 1


# Secrets never appear in a repr, a log line or an exception message.


def test_the_client_s_repr_shows_the_url_only() -> None:
    client = Client("https://api.sandbox.isometric.com/mrv/v0", SECRET, TOKEN)

    assert repr(client) == "Client(base_url='https://api.sandbox.isometric.com/mrv/v0')"


def test_credentials_echoed_by_the_server_are_blanked_out() -> None:
    body = json.dumps({"detail": f"Token {TOKEN} with secret {SECRET} is revoked"}).encode()
    with (
        CannedServer(401, body) as server,
        Client(server.url, SECRET, TOKEN) as client,
        pytest.raises(AuthenticationFailed) as caught,
    ):
        client.get_organisation()

    assert "is revoked" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_no_secret_in_logs_or_errors(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="isometric")
    secret, token = emulator.client_secret, emulator.access_token
    raised: list[IsometricError] = []
    faults = ["error_500", "error_503", "rate_limited", "lost_response", "reset"]
    emulator.configure(next_faults=faults)
    with Client(emulator.base_url, secret, token) as client:
        for _ in faults:
            with pytest.raises(IsometricError) as caught:
                client.create_production_batch(new_batch(emulator, "REF-1"))
            raised.append(caught.value)
        for call in (
            # The lost response stored REF-1, so this is a conflict.
            lambda: client.create_production_batch(new_batch(emulator, "REF-1")),
            lambda: client.get_production_batch("ptb_0000000000000000"),
            lambda: client.list_production_batches(after="forged"),
        ):
            with pytest.raises(IsometricError) as caught:
                call()
            raised.append(caught.value)
    with (
        Client(emulator.base_url, secret, token + "x") as client,
        pytest.raises(IsometricError) as caught,
    ):
        client.get_organisation()
    raised.append(caught.value)

    assert len(raised) == 9
    assert caplog.records
    logged = [record.getMessage() for record in caplog.records]
    for text in [*logged, *(str(error) for error in raised), *(repr(e) for e in raised)]:
        assert secret not in text
        assert token not in text
