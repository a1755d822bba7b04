"""The worker end to end: batches reach the emulator exactly once through faults, killed workers,
two workers at once and shutdown. Worker processes are real processes on the test database."""

import signal
import time
from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from batches.worker import Worker
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.factories import make_account, make_pending_batches
from tests.hostile import HostileIsometric
from tests.processes import run_manage, start_manage

pytestmark = pytest.mark.django_db(transaction=True)

FeedBatches = Callable[[int], list[str]]


@pytest.fixture
def pending_batches(
    account: IsometricAccount, known_facility: Facility, known_feedstock_type: FeedstockType
) -> FeedBatches:
    """Store n pending batches in the account; their supplier references."""

    def make(count: int) -> list[str]:
        batches = make_pending_batches(account, known_facility, known_feedstock_type, count)
        return [batch.supplier_reference_id for batch in batches]

    return make


def assert_each_created_once(emulator: Emulator, references: list[str]) -> None:
    counts = emulator.stats()["created_by_supplier_reference_id"]
    assert isinstance(counts, dict)
    assert {reference: counts.get(reference) for reference in references} == dict.fromkeys(
        references, 1
    )
    assert len(emulator.production_batches()) == len(references)
    assert not ProductionBatch.objects.exclude(sync_status=SyncStatus.SYNCED).exists()
    assert ProductionBatch.objects.exclude(remote_id=None).count() == len(references)


def test_500_batches_through_faults_are_each_created_exactly_once(
    emulator: Emulator, pending_batches: FeedBatches, settings: Settings
) -> None:
    settings.SYNC_BACKOFF_BASE = 0
    references = pending_batches(500)
    emulator.configure(
        error_500_rate=0.1,
        error_503_rate=0.1,
        rate_limited_rate=0.1,
        lost_response_rate=0.05,
        reset_rate=0.05,
        retry_after_seconds=0,
    )

    Worker(concurrency=4, once=True).run()

    assert_each_created_once(emulator, references)
    requests = emulator.stats()["requests"]
    assert isinstance(requests, dict)
    posts = requests["POST /production_batches"]
    # The faults did happen, each kind of them.
    assert {"500", "503", "429", "lost", "reset"} <= posts.keys()


def test_a_worker_killed_mid_push_and_restarted_still_creates_each_batch_once(
    emulator: Emulator, pending_batches: FeedBatches
) -> None:
    references = pending_batches(40)
    emulator.configure(latency_ms=150)
    worker = start_manage("sync_worker", "--concurrency", "4", SYNC_LEASE=1)
    try:
        _wait_for(lambda: _created_count(emulator) >= 8)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert ProductionBatch.objects.filter(sync_status=SyncStatus.SYNCING).exists()
    time.sleep(1.2)  # the dead worker's leases run out

    code, output = run_manage("sync_worker", "--once", SYNC_LEASE=1)

    assert code == 0, output
    assert_each_created_once(emulator, references)
    assert "Found in Isometric" in output  # the batches the dead worker had sent were adopted


def test_two_worker_processes_over_the_same_batches_push_each_once(
    emulator: Emulator, pending_batches: FeedBatches
) -> None:
    references = pending_batches(500)
    emulator.configure(latency_ms=5)

    workers = [start_manage("sync_worker", "--once", "--concurrency", "4") for _ in range(2)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert_each_created_once(emulator, references)
    # Both took part: each logged some of the creations.
    assert all(output.count("Created in Isometric") > 0 for output in outputs)
    assert sum(output.count("Created in Isometric") for output in outputs) == 500


def test_two_worker_processes_keep_to_the_accounts_rate_limit_together(
    emulator: Emulator, pending_batches: FeedBatches, account: IsometricAccount
) -> None:
    references = pending_batches(120)
    IsometricAccount.objects.filter(pk=account.pk).update(request_rate_limit=20)
    emulator.configure(rate_limit_rps=20, latency_ms=5)
    started = time.monotonic()

    workers = [start_manage("sync_worker", "--once", "--concurrency", "4") for _ in range(2)]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert_each_created_once(emulator, references)
    requests = emulator.stats()["requests"]
    assert isinstance(requests, dict)
    posts = requests["POST /production_batches"]
    assert posts.get("429", 0) <= 0.05 * sum(posts.values()), posts
    # Paced, not refused: 120 requests at 20 a second, the emulator's first second's burst aside.
    assert time.monotonic() - started >= (120 - 20) / 20


def test_a_slow_account_and_a_failing_one_never_delay_the_other_accounts_pulls(
    emulator: Emulator, hostile: HostileIsometric
) -> None:
    hostile.mode = "drip_headers"  # answers a byte a second: its pull takes the whole deadline
    slow = make_account("A slow", base_url=hostile.base_url)  # claimed first
    failing = make_account("B failing")  # nothing listens at its address
    healthy = [make_account(f"Kilns {n:02}", emulator=emulator) for n in range(98)]
    emulator.add_production_batches(3)
    started = time.monotonic()

    worker = start_manage(
        "sync_worker", SYNC_PULL_INTERVAL=120, ISOMETRIC_DEADLINE=60, SYNC_POLL_INTERVAL=0.1
    )
    try:
        _wait_for(
            lambda: (
                not IsometricAccount.objects.filter(
                    pk__in=[account.pk for account in healthy], last_pulled_at=None
                ).exists()
            ),
            timeout=40,
        )
        every_other_pulled = time.monotonic() - started
        slow.refresh_from_db()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)

    assert every_other_pulled < 40  # well within the interval, and the slow one's deadline
    assert slow.last_pulled_at is None  # still at it meanwhile
    failing.refresh_from_db()
    assert failing.last_pull_summary.startswith("The last refresh failed")
    assert ProductionBatch.objects.filter(account=healthy[-1]).count() == 3


def test_sigterm_finishes_the_attempts_in_flight_then_exits(
    emulator: Emulator, pending_batches: FeedBatches
) -> None:
    references = pending_batches(2)
    emulator.configure(latency_ms=1500)
    worker = start_manage("sync_worker", "--concurrency", "4")
    try:
        _wait_for(lambda: _posts_received(emulator) == 2)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=10)
    finally:
        worker.kill()

    assert worker.returncode == 0, output
    assert "sync worker: stopped" in output
    assert_each_created_once(emulator, references)


def test_a_worker_picks_up_a_new_batch_within_about_a_second(
    emulator: Emulator, pending_batches: FeedBatches
) -> None:
    worker = start_manage("sync_worker")
    try:
        time.sleep(2)  # started and idle
        [reference] = pending_batches(1)
        saved = time.monotonic()
        _wait_for(lambda: _created_count(emulator) == 1, timeout=5)
        assert time.monotonic() - saved < 1.5
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=10)
    assert_each_created_once(emulator, [reference])


def test_the_worker_refuses_a_concurrency_below_one() -> None:
    code, output = run_manage("sync_worker", "--concurrency", "0")

    assert code != 0
    assert "--concurrency must be at least 1" in output


def _created_count(emulator: Emulator) -> int:
    counts = emulator.stats()["created_by_supplier_reference_id"]
    assert isinstance(counts, dict)
    return sum(counts.values())


def _posts_received(emulator: Emulator) -> int:
    requests = emulator.stats()["requests"]
    assert isinstance(requests, dict)
    return sum(requests.get("POST /production_batches", {}).values())


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)
