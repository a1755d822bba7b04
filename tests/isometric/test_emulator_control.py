"""The emulator's controls: faults, latency, stats, state across restarts, threads, the CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from isometric.emulator import Emulator
from tests.isometric.factories import batch_body


def authorised(emulator: Emulator) -> requests.Session:
    session = requests.Session()
    session.headers["X-Client-Secret"] = emulator.client_secret
    session.headers["Authorization"] = f"Bearer {emulator.access_token}"
    return session


def control(emulator: Emulator, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, f"{emulator.url}/_emulator/{path}", json=body)


def api_delete(emulator: Emulator, batch_id: str) -> requests.Response:
    with authorised(emulator) as session:
        return session.delete(f"{emulator.base_url}/production_batches/{batch_id}")


def listed_ids(emulator: Emulator) -> list[str]:
    with authorised(emulator) as session:
        page = session.get(f"{emulator.base_url}/production_batches").json()
    return [node["id"] for node in page["nodes"]]


def statuses(emulator: Emulator, count: int) -> list[int]:
    with authorised(emulator) as session:
        url = f"{emulator.base_url}/organisation"
        return [session.get(url).status_code for _ in range(count)]


# The control endpoint


def test_config_over_http(emulator: Emulator) -> None:
    changed = control(emulator, "POST", "config", {"error_503_rate": 1, "retry_after_seconds": 9})
    current = control(emulator, "GET", "config").json()

    assert changed.status_code == 200
    assert current["error_503_rate"] == 1.0
    assert current["retry_after_seconds"] == 9
    with authorised(emulator) as session:
        response = session.get(f"{emulator.base_url}/organisation")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "9")


@pytest.mark.parametrize(
    "options",
    [
        {"no_such_option": 1},
        {"error_500_rate": 1.5},
        {"latency_ms": "slow"},
        {"ignore_supplier_reference_filter": 1},
        {"reuse_deleted_references": "no"},
        {"duplicate_status": 400},
        {"next_faults": ["meteor_strike"]},
    ],
)
def test_bad_config_is_refused_and_changes_nothing(
    emulator: Emulator, options: dict[str, object]
) -> None:
    response = control(emulator, "POST", "config", {"latency_ms": 5, **options})

    assert response.status_code == 400
    assert response.json()["detail"]
    assert emulator.settings()["latency_ms"] == 0


def test_reference_reuse_is_configured_over_http_until_reset(emulator: Emulator) -> None:
    default = control(emulator, "GET", "config").json()["reuse_deleted_references"]
    changed = control(emulator, "POST", "config", {"reuse_deleted_references": False})
    control(emulator, "POST", "reset")

    assert default is True
    assert changed.json()["reuse_deleted_references"] is False
    assert emulator.settings()["reuse_deleted_references"] is True


def test_reset_frees_the_references_of_deleted_batches(emulator: Emulator) -> None:
    emulator.configure(reuse_deleted_references=False)
    with authorised(emulator) as session:
        url = f"{emulator.base_url}/production_batches"
        first = session.post(url, json=batch_body(emulator)).json()
        session.delete(f"{url}/{first['id']}")
        control(emulator, "POST", "reset")
        emulator.configure(reuse_deleted_references=False)
        again = session.post(url, json=batch_body(emulator))

    assert again.status_code == 200


def test_seed_stats_and_reset_over_http(emulator: Emulator) -> None:
    seeded = control(emulator, "POST", "seed", {"count": 4}).json()["production_batches"]
    with authorised(emulator) as session:
        session.post(f"{emulator.base_url}/production_batches", json=batch_body(emulator))
        session.get(f"{emulator.base_url}/production_batches")

    stats = control(emulator, "GET", "stats").json()
    reset = control(emulator, "POST", "reset")

    assert len(seeded) == 4
    assert stats["requests"] == {
        "POST /production_batches": {"200": 1},
        "GET /production_batches": {"200": 1},
    }
    assert stats["created_by_supplier_reference_id"] == {"REF-1": 1}
    assert reset.status_code == 200
    assert emulator.production_batches() == []
    assert control(emulator, "GET", "stats").json()["requests"] == {}


def test_a_registered_facility_is_accepted(emulator: Emulator) -> None:
    registered = control(emulator, "POST", "facilities", {"id": "fcl_PORTAL0000000001"})
    body = batch_body(emulator) | {"facility_id": "fcl_PORTAL0000000001"}

    with authorised(emulator) as session:
        created = session.post(f"{emulator.base_url}/production_batches", json=body)

    assert registered.json() == {
        "id": "fcl_PORTAL0000000001",
        "name": "Facility fcl_PORTAL0000000001",
    }
    assert created.status_code == 200
    assert control(emulator, "POST", "facilities", {"id": "fcl_1"}).status_code == 400


def test_delete_elsewhere(emulator: Emulator) -> None:
    [batch] = emulator.add_production_batches(1)

    assert control(emulator, "DELETE", f"production_batches/{batch['id']}").status_code == 204
    assert control(emulator, "DELETE", f"production_batches/{batch['id']}").status_code == 404
    assert emulator.production_batches() == []


# Refused deletes


def test_a_refused_delete_answers_422_and_keeps_the_batch(emulator: Emulator) -> None:
    [batch] = emulator.add_production_batches(1)
    path = f"production_batches/{batch['id']}/delete_refusal"

    refused = control(emulator, "PUT", path, {"reason": "Part of removal rmv_1"})
    response = api_delete(emulator, batch["id"])

    assert refused.status_code == 200
    assert refused.json() == {"id": batch["id"], "reason": "Part of removal rmv_1"}
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["path", "id"],
                "msg": "Part of removal rmv_1",
                "type": "value_error",
                "input": batch["id"],
            }
        ]
    }
    assert listed_ids(emulator) == [batch["id"]]


def test_a_delete_refusal_has_a_default_reason(emulator: Emulator) -> None:
    [batch] = emulator.add_production_batches(1)

    control(emulator, "PUT", f"production_batches/{batch['id']}/delete_refusal")
    [problem] = api_delete(emulator, batch["id"]).json()["detail"]

    assert problem["msg"] == "This production batch is part of a removal and cannot be deleted"


def test_a_cleared_refusal_lets_the_delete_through(emulator: Emulator) -> None:
    [batch] = emulator.add_production_batches(1)
    path = f"production_batches/{batch['id']}/delete_refusal"
    control(emulator, "PUT", path)

    refused = api_delete(emulator, batch["id"])
    cleared = control(emulator, "DELETE", path)
    deleted = api_delete(emulator, batch["id"])

    assert (refused.status_code, cleared.status_code, deleted.status_code) == (422, 204, 204)
    assert listed_ids(emulator) == []
    assert emulator.stats()["requests"] == {
        "DELETE /production_batches/{id}": {"422": 1, "204": 1},
        "GET /production_batches": {"200": 1},
    }


def test_only_the_flagged_batch_is_refused(emulator: Emulator) -> None:
    flagged, other = emulator.add_production_batches(2)
    control(emulator, "PUT", f"production_batches/{flagged['id']}/delete_refusal")

    assert api_delete(emulator, other["id"]).status_code == 204
    assert api_delete(emulator, flagged["id"]).status_code == 422


def test_a_delete_elsewhere_ignores_the_refusal(emulator: Emulator) -> None:
    [batch] = emulator.add_production_batches(1)
    refused = control(emulator, "PUT", f"production_batches/{batch['id']}/delete_refusal")

    assert refused.status_code == 200
    assert control(emulator, "DELETE", f"production_batches/{batch['id']}").status_code == 204
    assert emulator.production_batches() == []


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_refusal_for_an_unknown_batch_is_404(emulator: Emulator, method: str) -> None:
    response = control(emulator, method, "production_batches/ptb_0000000000000000/delete_refusal")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such batch"}


def test_a_refusal_reason_must_be_text(emulator: Emulator) -> None:
    [batch] = emulator.add_production_batches(1)
    path = f"production_batches/{batch['id']}/delete_refusal"

    assert control(emulator, "PUT", path, {"reason": 42}).status_code == 400
    assert api_delete(emulator, batch["id"]).status_code == 204


def test_reset_clears_delete_refusals(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Emulator(state_file=state, seed=1) as emulator:
        [batch] = emulator.production_batches()
        control(emulator, "PUT", f"production_batches/{batch['id']}/delete_refusal")
        before = json.loads(state.read_text())["delete_refusals"]
        control(emulator, "POST", "reset")
        after = json.loads(state.read_text())["delete_refusals"]
        [fresh] = emulator.production_batches()

        assert api_delete(emulator, fresh["id"]).status_code == 204

    assert list(before) == [batch["id"]]
    assert after == {}


# Faults


def test_faults_by_chance_repeat_with_the_same_seed(emulator: Emulator) -> None:
    emulator.configure(random_seed=7, error_500_rate=0.3, error_503_rate=0.2)
    first = statuses(emulator, 30)
    emulator.configure(random_seed=7)
    second = statuses(emulator, 30)

    assert first == second
    assert set(first) == {200, 500, 503}


def test_faults_at_rate_one_always_happen(emulator: Emulator) -> None:
    emulator.configure(error_500_rate=1.0)

    assert statuses(emulator, 5) == [500] * 5


def test_queued_faults_come_first_and_once(emulator: Emulator) -> None:
    emulator.configure(next_faults=["error_503", "rate_limited", "error_500"])

    assert statuses(emulator, 5) == [503, 429, 500, 200, 200]


def test_a_lost_response_stores_the_batch_then_drops_the_connection(
    emulator: Emulator,
) -> None:
    emulator.configure(lost_response_rate=1.0)

    with authorised(emulator) as session, pytest.raises(requests.ConnectionError):
        session.post(f"{emulator.base_url}/production_batches", json=batch_body(emulator))

    stats = emulator.stats()
    assert stats["requests"] == {"POST /production_batches": {"lost": 1}}
    assert stats["created_by_supplier_reference_id"] == {"REF-1": 1}
    assert len(emulator.production_batches()) == 1


def test_a_reset_stores_nothing(emulator: Emulator) -> None:
    emulator.configure(reset_rate=1.0)

    with authorised(emulator) as session, pytest.raises(requests.ConnectionError):
        session.post(f"{emulator.base_url}/production_batches", json=batch_body(emulator))

    assert emulator.stats()["requests"] == {"POST /production_batches": {"reset": 1}}
    assert emulator.production_batches() == []


def test_latency_delays_each_request(emulator: Emulator) -> None:
    emulator.configure(latency_ms=80, jitter_ms=10)

    started = time.monotonic()
    statuses(emulator, 3)

    assert 3 * 0.070 <= time.monotonic() - started < 3 * 0.090 + 0.5


def test_the_rate_limit_answers_429_with_retry_after(emulator: Emulator) -> None:
    emulator.configure(rate_limit_rps=2)

    with authorised(emulator) as session:
        responses = [session.get(f"{emulator.base_url}/organisation") for _ in range(5)]

    assert [response.status_code for response in responses] == [200] * 2 + [429] * 3
    assert responses[-1].headers["Retry-After"] == "1"


# Concurrency


def test_concurrent_creates_store_each_reference_exactly_once(emulator: Emulator) -> None:
    references = [f"REF-{number}" for number in range(20)]
    attempts = references * 5  # every reference raced by five requests

    def create(reference: str) -> int:
        with authorised(emulator) as session:
            body = batch_body(emulator, reference)
            return session.post(f"{emulator.base_url}/production_batches", json=body).status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = Counter(pool.map(create, attempts))

    assert results == {200: 20, 409: 80}
    assert emulator.stats()["created_by_supplier_reference_id"] == dict.fromkeys(references, 1)
    stored = [batch["supplier_reference_id"] for batch in emulator.production_batches()]
    assert sorted(stored) == sorted(references)


def test_serves_concurrent_clients_over_kept_alive_connections(emulator: Emulator) -> None:
    emulator.add_production_batches(30)

    def read_pages(_: int) -> list[int]:
        with authorised(emulator) as session:
            url = f"{emulator.base_url}/production_batches"
            return [session.get(url, params={"first": 50}).status_code for _ in range(25)]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [status for page in pool.map(read_pages, range(8)) for status in page]
    elapsed = time.monotonic() - started

    assert results == [200] * 200
    assert emulator.stats()["connections_opened"] == 8
    assert 200 / elapsed > 100  # requests a second


# State across restarts


def test_the_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Emulator(state_file=state, seed=3) as first, authorised(first) as session:
        created = session.post(f"{first.base_url}/production_batches", json=batch_body(first))
        first.register_facility("fcl_PORTAL0000000001")
        before = (first.access_token, first.organisation, first.production_batches())

    with Emulator(state_file=state, seed=3) as second:
        after = (second.access_token, second.organisation, second.production_batches())
        facility_ids = second.facility_ids

    assert created.status_code == 200
    assert after == before
    assert len(after[2]) == 4  # seeded once, not again on restart
    assert "fcl_PORTAL0000000001" in facility_ids
    assert json.loads(state.read_text())["production_batches"] == before[2]
    assert [path.name for path in tmp_path.iterdir()] == ["state.json"]


def test_a_delete_refusal_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Emulator(state_file=state, seed=1) as first:
        [batch] = first.production_batches()
        first.refuse_deletion(batch["id"], "Part of removal rmv_1")

    with Emulator(state_file=state) as second:
        response = api_delete(second, batch["id"])
        remaining = second.production_batches()

    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "Part of removal rmv_1"
    assert remaining == [batch]


def test_the_references_of_deleted_batches_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Emulator(state_file=state, seed=1) as first:
        [batch] = first.production_batches()
        api_delete(first, batch["id"])

    with Emulator(state_file=state) as second, authorised(second) as session:
        second.configure(reuse_deleted_references=False)
        body = batch_body(second, batch["supplier_reference_id"])
        response = session.post(f"{second.base_url}/production_batches", json=body)

    assert response.status_code == 409


def test_a_state_file_from_before_deletes_were_remembered_is_read(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Emulator(state_file=state, seed=1) as first:
        [batch] = first.production_batches()
    older = json.loads(state.read_text())
    older.pop("delete_refusals", None)
    older.pop("deleted_supplier_reference_ids", None)
    state.write_text(json.dumps(older))

    with Emulator(state_file=state) as second:
        response = api_delete(second, batch["id"])

    assert response.status_code == 204


# The command line


@contextmanager
def command_line(*arguments: str, env: dict[str, str] | None = None) -> Iterator[list[str]]:
    """Run `python -m isometric.emulator --port=0 *arguments`; yield the banner it prints, then
    stop it as a process manager would and check that it stopped cleanly."""
    command = [sys.executable, "-m", "isometric.emulator", "--port=0", *arguments]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        banner = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("Ctrl-C"):
                break
        try:
            yield banner
        finally:
            process.send_signal(signal.SIGTERM)  # else a failure would wait on it forever
        assert process.wait(timeout=5) == 0


def banner_base_url(banner: list[str]) -> str:
    return banner[0].removeprefix("Isometric emulator on ").strip()


def test_the_command_line_serves_and_prints_what_a_client_needs(tmp_path: Path) -> None:
    arguments = [
        "--seed=3",
        "--facility=fcl_PORTAL0000000001",
        "--latency-ms=1",
        f"--state={tmp_path / 'state.json'}",
    ]
    environment = os.environ | {"ISOMETRIC_EMULATOR_CLIENT_SECRET": "from-the-environment"}
    with command_line(*arguments, env=environment) as banner:
        fields = {
            line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
            for line in banner
            if line.startswith("  ")
        }
        base_url = banner_base_url(banner)
        organisation = requests.get(
            f"{base_url}/organisation",
            headers={
                "X-Client-Secret": fields["X-Client-Secret"],
                "Authorization": fields["Authorization"],
            },
        )

    assert base_url.startswith("http://127.0.0.1:")
    assert base_url.endswith("/mrv/v0")
    assert fields["X-Client-Secret"] == "from-the-environment"
    assert organisation.status_code == 200
    assert fields["Organisation"].startswith(organisation.json()["id"])
    assert any("fcl_PORTAL0000000001" in line for line in banner)
    assert sum(line.startswith("  Feedstock type:") for line in banner) == 4
    assert len(json.loads((tmp_path / "state.json").read_text())["production_batches"]) == 3


@pytest.mark.parametrize(("arguments", "reuse"), [((), True), (("--no-reference-reuse",), False)])
def test_the_command_line_can_keep_deleted_references_reserved(
    arguments: tuple[str, ...], reuse: bool
) -> None:
    with command_line(*arguments) as banner:
        root = banner_base_url(banner).removesuffix("/mrv/v0")
        config = requests.get(f"{root}/_emulator/config").json()

    assert config["reuse_deleted_references"] is reuse
