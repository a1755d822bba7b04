"""One push attempt per outcome, against the emulator over real HTTP, driven by its faults."""

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from batches import sync
from batches.metrics import SYNC_ATTEMPTS
from batches.models import (
    AttemptOutcome,
    Facility,
    FeedstockType,
    ProductionBatch,
    SyncAttempt,
    SyncStatus,
)
from batches.sync.queue import backoff
from isometric.client import Client
from isometric.emulator import Emulator
from notifications.models import Event
from portal.models import Clients, ConnectionStatus, IsometricAccount, RequestBudget
from portal.pace import AccountPace
from tests.factories import make_account, make_batch, make_facility

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(
    account: IsometricAccount, known_facility: Facility, known_feedstock_type: FeedstockType
) -> ProductionBatch:
    return make_batch(
        known_facility,
        [known_feedstock_type],
        account=account,
        supplier_reference_id="KILN-A-0001",
    )


def push_once() -> AttemptOutcome | None:
    """Claim the one due batch and push it, as a worker thread does."""
    [claim] = sync.claim_due(10)
    clients = Clients()
    try:
        return sync.push(claim, clients)
    finally:
        clients.close()


def created(emulator: Emulator, reference: str) -> int:
    counts = emulator.stats()["created_by_supplier_reference_id"]
    assert isinstance(counts, dict)
    return int(counts.get(reference, 0))


def test_a_created_batch_is_synced_with_isometric_id_and_name(
    batch: ProductionBatch, emulator: Emulator
) -> None:
    assert push_once() == AttemptOutcome.CREATED

    batch.refresh_from_db()
    [remote] = emulator.production_batches()
    assert batch.sync_status == SyncStatus.SYNCED
    assert batch.remote_id == remote["id"]
    assert batch.display_name == remote["display_name"] != ""
    assert batch.uploaded_at is not None
    assert (batch.sync_attempts, batch.claim_token, batch.possibly_sent) == (1, "", False)
    [attempt] = batch.attempts.all()
    assert (attempt.outcome, attempt.http_status) == (AttemptOutcome.CREATED, 200)
    assert remote["id"] in attempt.message
    assert created(emulator, "KILN-A-0001") == 1


def test_a_refused_batch_keeps_each_field_error_at_its_form_field(
    account: IsometricAccount, known_feedstock_type: FeedstockType, emulator: Emulator
) -> None:
    unknown_to_isometric = make_facility("Kiln Z")
    batch = make_batch(unknown_to_isometric, [known_feedstock_type], account=account)

    assert push_once() == AttemptOutcome.REJECTED

    batch.refresh_from_db()
    assert batch.sync_status == SyncStatus.REJECTED
    assert batch.next_attempt_at is None
    [[field, message]] = batch.rejection_errors
    assert field == "facility"
    assert "facility" in message.lower()
    assert batch.attempts.get().http_status == 422


def test_a_duplicate_reference_is_looked_up_and_adopted_not_sent_again(
    batch: ProductionBatch, emulator: Emulator, isometric_client: Client
) -> None:
    existing = isometric_client.create_production_batch(batch.to_api())

    assert push_once() == AttemptOutcome.ADOPTED

    batch.refresh_from_db()
    assert (batch.sync_status, batch.remote_id) == (SyncStatus.SYNCED, existing.id)
    assert created(emulator, "KILN-A-0001") == 1


def test_a_lost_response_is_looked_up_before_posting_again(
    batch: ProductionBatch, emulator: Emulator
) -> None:
    emulator.configure(next_faults=["lost_response"])

    assert push_once() == AttemptOutcome.RETRY
    batch.refresh_from_db()
    assert (batch.sync_status, batch.possibly_sent) == (SyncStatus.PENDING, True)

    ProductionBatch.objects.update(next_attempt_at=timezone.now())
    assert push_once() == AttemptOutcome.ADOPTED
    batch.refresh_from_db()
    assert batch.sync_status == SyncStatus.SYNCED
    assert created(emulator, "KILN-A-0001") == 1
    requests = emulator.stats()["requests"]
    assert isinstance(requests, dict)
    assert requests["POST /production_batches"] == {"lost": 1}


def test_a_rate_limited_push_waits_at_least_retry_after(
    batch: ProductionBatch, emulator: Emulator
) -> None:
    emulator.configure(retry_after_seconds=30, next_faults=["rate_limited"])

    assert push_once() == AttemptOutcome.RETRY

    batch.refresh_from_db()
    assert batch.sync_status == SyncStatus.PENDING
    assert batch.next_attempt_at is not None
    assert batch.next_attempt_at >= timezone.now() + timedelta(seconds=29)
    # Isometric turned it away: nothing was stored, so the next attempt need not look first.
    assert batch.possibly_sent is False
    assert batch.attempts.get().http_status == 429


def attempts_counted() -> float:
    return sum(
        sample.value
        for metric in SYNC_ATTEMPTS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def test_a_push_whose_turn_is_far_off_waits_for_it_uncounted(
    batch: ProductionBatch, emulator: Emulator, settings: Any
) -> None:
    settings.ISOMETRIC_MAX_TURN_WAIT = 5
    settings.SYNC_GIVE_UP_AFTER = 3600
    since = timezone.now() - timedelta(hours=2)  # failing long enough to be given up on
    ProductionBatch.objects.update(sync_attempts=3, failing_since=since, last_error="Earlier.")
    [claim] = sync.claim_due(10)
    # Meanwhile another worker's request is answered 429, with a Retry-After of a minute.
    turn = timezone.now() + timedelta(seconds=60)
    RequestBudget.objects.create(account=batch.account, interval=0.1, next_at=turn)
    counted = attempts_counted()
    clients = Clients(pace=AccountPace)

    try:
        assert sync.push(claim, clients) is None
    finally:
        clients.close()

    batch.refresh_from_db()
    assert (batch.sync_status, batch.sync_attempts, batch.claim_token) == (
        SyncStatus.PENDING,
        3,
        "",
    )
    assert (batch.failing_since, batch.last_error, batch.possibly_sent) == (
        since,
        "Earlier.",
        False,
    )
    # Its place in the queue kept, it waits unclaimed until the turn is within reach.
    assert batch.next_attempt_at == claim.due_at
    assert sync.claim_due(10) == []
    assert not batch.attempts.exists()
    assert not Event.objects.exists()
    assert attempts_counted() == counted
    requests = emulator.stats()["requests"]
    assert isinstance(requests, dict)
    assert "POST /production_batches" not in requests


@pytest.mark.parametrize("fault", ["error_500", "error_503", "reset"])
def test_server_and_transport_errors_are_retried_after_a_backoff(
    batch: ProductionBatch, emulator: Emulator, fault: str
) -> None:
    emulator.configure(retry_after_seconds=0, next_faults=[fault])

    assert push_once() == AttemptOutcome.RETRY

    batch.refresh_from_db()
    assert (batch.sync_status, batch.sync_attempts) == (SyncStatus.PENDING, 1)
    assert batch.next_attempt_at is not None
    assert batch.next_attempt_at > timezone.now()
    assert batch.last_error


def test_backoff_grows_is_capped_jittered_and_respects_retry_after() -> None:
    delays = [backoff(attempts) for attempts in range(1, 12)]

    assert 1 <= delays[0] <= 2
    assert 4 <= delays[2] <= 8
    assert all(300 <= delay <= 600 for delay in delays[9:])
    assert len({backoff(3) for _ in range(20)}) > 1
    assert backoff(1, retry_after=45) == 45


def test_a_batch_failing_for_less_than_the_give_up_time_is_retried_whatever_its_count(
    batch: ProductionBatch, emulator: Emulator, settings: Any
) -> None:
    settings.SYNC_GIVE_UP_AFTER = 3600
    since = timezone.now() - timedelta(minutes=50)
    ProductionBatch.objects.update(sync_attempts=500, failing_since=since)
    emulator.configure(next_faults=["error_500"])

    assert push_once() == AttemptOutcome.RETRY

    batch.refresh_from_db()
    assert (batch.sync_status, batch.sync_attempts) == (SyncStatus.PENDING, 501)
    assert batch.failing_since == since


def test_a_batch_failing_for_longer_than_the_give_up_time_is_failed(
    batch: ProductionBatch, emulator: Emulator, settings: Any
) -> None:
    settings.SYNC_GIVE_UP_AFTER = 3600
    ProductionBatch.objects.update(failing_since=timezone.now() - timedelta(minutes=61))
    emulator.configure(next_faults=["error_500"])

    assert push_once() == AttemptOutcome.FAILED

    batch.refresh_from_db()
    assert (batch.sync_status, batch.sync_attempts) == (SyncStatus.FAILED, 1)
    assert batch.next_attempt_at is None
    assert "Gave up after failing since" in batch.last_error


def test_the_first_failure_starts_the_give_up_clock_and_success_clears_it(
    batch: ProductionBatch, emulator: Emulator
) -> None:
    emulator.configure(next_faults=["error_503"])
    assert push_once() == AttemptOutcome.RETRY
    batch.refresh_from_db()
    assert batch.failing_since is not None

    ProductionBatch.objects.update(next_attempt_at=timezone.now())
    assert push_once() == AttemptOutcome.CREATED
    batch.refresh_from_db()
    assert batch.failing_since is None


def test_refused_credentials_pause_the_account_without_counting_an_attempt(
    emulator: Emulator, known_facility: Facility, known_feedstock_type: FeedstockType
) -> None:
    account = make_account(emulator=emulator, access_token="revoked.token.value")
    batch = make_batch(known_facility, [known_feedstock_type], account=account)
    other = make_batch(known_facility, [known_feedstock_type], account=account)

    [claim, _] = sorted(sync.claim_due(2), key=lambda claim: claim.batch.pk)
    assert sync.push(claim, Clients()) == AttemptOutcome.PAUSED

    account.refresh_from_db()
    assert account.connection_status == ConnectionStatus.REJECTED
    batch.refresh_from_db()
    assert (batch.sync_status, batch.sync_attempts) == (SyncStatus.PENDING, 0)
    assert "paused" in batch.last_error
    # The account's batches wait, the other claimed one included, once its lease is over.
    ProductionBatch.objects.filter(pk=other.pk).update(next_attempt_at=timezone.now())
    assert sync.claim_due(10) == []

    account.set_credentials(access_token=emulator.access_token)
    account.save()
    assert {claim.batch.pk for claim in sync.claim_due(10)} == {batch.pk, other.pk}


def test_two_claims_never_share_a_batch(account: IsometricAccount, facility: Facility) -> None:
    batches = [make_batch(facility, account=account) for _ in range(5)]

    first, second = sync.claim_due(3), sync.claim_due(3)

    assert len(first) == 3 and len(second) == 2
    assert {c.batch.pk for c in first}.isdisjoint({c.batch.pk for c in second})
    assert sync.claim_due(3) == []
    assert {c.batch.pk for c in first + second} == {batch.pk for batch in batches}


def test_batches_not_yet_due_or_settled_are_not_claimed(
    account: IsometricAccount, facility: Facility
) -> None:
    make_batch(facility, account=account, next_attempt_at=timezone.now() + timedelta(hours=1))
    make_batch(facility, account=account, sync_status=SyncStatus.FAILED)

    assert sync.claim_due(10) == []


def test_an_account_s_batches_wait_unclaimed_while_its_next_turn_is_far_off(
    account: IsometricAccount, facility: Facility, settings: Any
) -> None:
    settings.ISOMETRIC_MAX_TURN_WAIT = 5
    batch = make_batch(facility, account=account)
    other = make_batch(facility, account=make_account("Retorts Ltd"))
    budget = RequestBudget.objects.create(
        account=account, next_at=timezone.now() + timedelta(seconds=60)
    )

    assert [claim.batch for claim in sync.claim_due(10)] == [other]

    budget.next_at = timezone.now() + timedelta(seconds=4)  # within a worker's wait
    budget.save()
    assert [claim.batch for claim in sync.claim_due(10)] == [batch]


def test_an_expired_lease_makes_the_batch_due_again_and_looked_up_first(
    batch: ProductionBatch, emulator: Emulator, isometric_client: Client
) -> None:
    [claim] = sync.claim_due(1)
    # Its worker posted it, then died before recording the outcome.
    isometric_client.create_production_batch(batch.to_api())
    assert sync.claim_due(1) == []
    ProductionBatch.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    [again] = sync.claim_due(1)
    assert again.batch.pk == batch.pk and again.look_up_first
    assert again.token != claim.token
    assert sync.push(again, Clients()) == AttemptOutcome.ADOPTED
    assert created(emulator, "KILN-A-0001") == 1


def test_an_outcome_is_not_applied_once_the_claim_is_lost(
    batch: ProductionBatch, emulator: Emulator
) -> None:
    [claim] = sync.claim_due(1)
    ProductionBatch.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    [again] = sync.claim_due(1)

    assert sync.push(claim, Clients()) == AttemptOutcome.CREATED

    batch.refresh_from_db()
    assert (batch.sync_status, batch.claim_token) == (SyncStatus.SYNCING, again.token)
    # The history keeps it all the same, after the lost attempt the second claim recorded.
    assert [a.outcome for a in batch.attempts.all()] == [
        AttemptOutcome.CREATED,
        AttemptOutcome.RETRY,
    ]


def test_a_lease_that_ran_out_is_an_attempt_in_the_batch_s_history(
    batch: ProductionBatch, emulator: Emulator
) -> None:
    sync.claim_due(1)  # its worker dies with it
    ProductionBatch.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    [again] = sync.claim_due(1)

    assert again.look_up_first
    [lost] = batch.attempts.all()
    assert lost.outcome == AttemptOutcome.RETRY
    assert "did not finish within its lease" in lost.message
    batch.refresh_from_db()
    assert batch.sync_attempts == 1 and batch.failing_since is not None


def test_a_released_claim_is_due_at_once_and_keeps_what_it_knew(
    batch: ProductionBatch, emulator: Emulator
) -> None:
    ProductionBatch.objects.update(possibly_sent=True)
    [claim] = sync.claim_due(1)

    sync.release(claim)

    [again] = sync.claim_due(1)
    assert again.batch.pk == batch.pk and again.look_up_first


def test_no_attempt_logs_or_records_the_credentials(
    emulator: Emulator,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    refused = make_account(emulator=emulator, client_secret="secret-that-is-wrong-0001")
    make_batch(known_facility, [known_feedstock_type], account=refused)
    assert push_once() == AttemptOutcome.PAUSED
    account = make_account(emulator=emulator)
    make_batch(make_facility("Unknown to Isometric"), [known_feedstock_type], account=account)
    emulator.configure(next_faults=["error_500"])
    assert push_once() == AttemptOutcome.RETRY
    ProductionBatch.objects.filter(account=account).update(next_attempt_at=timezone.now())
    assert push_once() == AttemptOutcome.REJECTED

    recorded = [
        *SyncAttempt.objects.values_list("message", flat=True),
        *ProductionBatch.objects.values_list("last_error", flat=True),
        *IsometricAccount.objects.values_list("connection_message", flat=True),
        caplog.text,
    ]
    for secret in ("secret-that-is-wrong-0001", emulator.client_secret, emulator.access_token):
        assert all(secret not in text for text in recorded)
