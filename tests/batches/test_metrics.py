"""/metrics for Prometheus: only with the token or from an allowed address; the portal's state
read from the database, the requests each process served, its calls to Isometric and its sync
attempts; never a secret. The worker serves its own on --metrics-port."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from pytest_django.fixtures import Settings

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from batches.worker import Worker
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.factories import make_account, make_batch, make_pending_batches
from tests.processes import free_port, get_when_up, start_gunicorn, start_manage

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789"


@pytest.fixture
def scraper(settings: Settings) -> Client:
    settings.METRICS_TOKEN = TOKEN
    return Client(headers={"authorization": f"Bearer {TOKEN}"})


def scrape(client: Client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, sample: str) -> float:
    """A sample's value, by its name and labels as the exposition writes them."""
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"no {sample} in the metrics"
    return float(match.group(1))


@pytest.mark.parametrize(
    ("token", "allowed", "address", "authorization", "status"),
    [
        ("", [], "127.0.0.1", "", 403),  # nothing set: nobody
        ("", [], "127.0.0.1", "Bearer ", 403),
        (TOKEN, [], "127.0.0.1", "", 403),
        (TOKEN, [], "127.0.0.1", "Bearer wrong-token", 403),
        (TOKEN, [], "203.0.113.9", f"Bearer {TOKEN}", 200),
        ("", ["10.0.0.0/8"], "10.1.2.3", "", 200),
        ("", ["10.0.0.0/8"], "11.1.2.3", "", 403),
        ("", ["10.0.0.0/8"], "10.0.0.5", "", 403),  # the proxy: anyone outside, passed on
        (TOKEN, ["10.0.0.0/8"], "10.0.0.5", f"Bearer {TOKEN}", 200),
    ],
)
def test_only_the_token_or_an_allowed_address_reads_the_metrics(
    settings: Settings,
    token: str,
    allowed: list[str],
    address: str,
    authorization: str,
    status: int,
) -> None:
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = token, allowed
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    client = Client(REMOTE_ADDR=address, headers={"authorization": authorization})

    assert client.get("/metrics").status_code == status


def test_the_portals_state_by_account(
    scraper: Client, account: IsometricAccount, known_facility: Facility
) -> None:
    other = make_account("Retorts Ltd")
    make_batch(known_facility, sync_status=SyncStatus.SYNCED)
    make_batch(known_facility, sync_status=SyncStatus.SYNCED)
    waiting = make_batch(known_facility)  # pending
    ProductionBatch.objects.filter(pk=waiting.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    make_batch(account=other, sync_status=SyncStatus.REJECTED)
    IsometricAccount.objects.filter(pk=account.pk).update(
        last_pulled_at=timezone.now() - timedelta(minutes=5)
    )

    text = scrape(scraper)

    assert value(text, 'batch_portal_batches{account="Kilns Ltd",status="synced"}') == 2
    assert value(text, 'batch_portal_batches{account="Kilns Ltd",status="pending"}') == 1
    assert value(text, 'batch_portal_batches{account="Retorts Ltd",status="rejected"}') == 1
    oldest = value(text, 'batch_portal_oldest_waiting_seconds{account="Kilns Ltd"}')
    assert 7200 <= oldest < 7300
    assert 'batch_portal_oldest_waiting_seconds{account="Retorts Ltd"}' not in text
    pulled = value(text, 'batch_portal_last_pull_age_seconds{account="Kilns Ltd"}')
    assert 300 <= pulled < 400


@pytest.mark.django_db(transaction=True)  # the worker closes its connections when it stops
def test_requests_calls_to_isometric_and_attempts_are_counted_without_secrets(
    scraper: Client,
    operator_client: Client,
    emulator: Emulator,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
) -> None:
    created = 'batch_portal_sync_attempts_total{outcome="created"}'
    created_before = REGISTRY.get_sample_value(created.split("{")[0], {"outcome": "created"}) or 0
    make_pending_batches(account, known_facility, known_feedstock_type, 3)
    assert operator_client.get("/batches/").status_code == 200

    Worker(concurrency=2, once=True).run()
    text = scrape(scraper)

    assert value(text, created) == created_before + 3
    listed = 'batch_portal_request_seconds_count{method="GET",status="200",view="batches:list"}'
    assert value(text, listed) >= 1
    posts = (
        "batch_portal_isometric_request_seconds_count"
        '{endpoint="/production_batches",method="POST",status="200"}'
    )
    assert value(text, posts) >= 3
    assert emulator.client_secret not in text and emulator.access_token not in text


@pytest.mark.django_db(transaction=True)
def test_a_worker_serves_its_own_metrics_to_the_token_only() -> None:
    port = free_port()
    worker = start_manage("sync_worker", "--metrics-port", str(port), METRICS_TOKEN=TOKEN)
    try:
        refused = get_when_up(f"http://127.0.0.1:{port}/metrics")
        allowed = get_when_up(f"http://127.0.0.1:{port}/metrics", Authorization=f"Bearer {TOKEN}")
    finally:
        worker.terminate()
        worker.communicate(timeout=30)

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert "batch_portal_sync_attempts" in allowed.text


@pytest.mark.django_db(transaction=True)
def test_gunicorns_processes_add_up_their_counts(tmp_path: Path) -> None:
    port = free_port()
    server = start_gunicorn(
        port, WEB_CONCURRENCY="3", METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        get_when_up(f"{url}/healthz", Host="localhost")
        for _ in range(19):
            assert requests.get(f"{url}/healthz", headers={"Host": "localhost"}).ok
        scrapes = [
            requests.get(
                f"{url}/metrics", headers={"Host": "localhost", "Authorization": f"Bearer {TOKEN}"}
            ).text
            for _ in range(5)
        ]
    finally:
        server.terminate()
        server.communicate(timeout=30)

    sample = 'batch_portal_request_seconds_count{method="GET",status="200",view="healthz"}'
    # Whichever process answers the scrape, it counts every process's requests.
    assert [value(text, sample) for text in scrapes] == [20] * 5
