"""LOG_FORMAT=json: every log line a JSON object, one per sync attempt and one per request, with
their fields and no secret."""

import json

import pytest
import requests

from batches.models import Facility, FeedstockType
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.factories import make_pending_batches
from tests.processes import free_port, get_when_up, run_manage, start_gunicorn

pytestmark = pytest.mark.django_db(transaction=True)


def json_lines(output: str) -> list[dict[str, object]]:
    lines = [line for line in output.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # each must be JSON


def test_a_line_per_sync_attempt_with_its_fields(
    emulator: Emulator,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
) -> None:
    [batch, *_] = make_pending_batches(account, known_facility, known_feedstock_type, 2)

    code, output = run_manage("sync_worker", "--once", LOG_FORMAT="json", LOG_LEVEL="INFO")

    assert code == 0, output
    attempts = [line for line in json_lines(output) if "outcome" in line]
    assert len(attempts) == 2
    mine = next(line for line in attempts if line["batch_id"] == batch.pk)
    assert mine["outcome"] == "created" and mine["http_status"] == 200
    assert mine["supplier_reference_id"] == batch.supplier_reference_id
    assert mine["logger"] == "batches.sync.queue" and mine["level"] == "INFO"
    assert emulator.client_secret not in output and emulator.access_token not in output


def test_a_line_per_request_as_gunicorn_serves_the_portal() -> None:
    port = free_port()
    server = start_gunicorn(port, LOG_FORMAT="json")
    try:
        get_when_up(f"http://127.0.0.1:{port}/healthz", Host="localhost")
        requests.get(f"http://127.0.0.1:{port}/batches/?q=x", headers={"Host": "localhost"})
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)

    portal_lines = [
        line for line in output.splitlines() if line.startswith("{")
    ]  # gunicorn's own start and stop lines are its own format
    requests_logged = [line for line in json_lines("\n".join(portal_lines)) if "view" in line]
    assert [(line["view"], line["status"], line["path"]) for line in requests_logged] == [
        ("healthz", 200, "/healthz"),
        ("batches:list", 302, "/batches/"),
        ("login", 200, "/login/"),
    ]
    assert all(isinstance(line["duration_ms"], float) for line in requests_logged)


def test_an_unknown_log_format_stops_the_portal_with_why() -> None:
    code, output = run_manage("check", LOG_FORMAT="xml")

    assert code != 0
    assert 'LOG_FORMAT must be "plain" or "json"' in output
