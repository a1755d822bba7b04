"""Push: every batch reaches Isometric exactly once.

The batch table is the outbox. A worker claims due rows (claim_due), pushes each outside any
transaction (push), then records the outcome only if its claim still holds. A claim is a lease:
when a worker dies, its rows fall due again when the lease runs out, and because the claim set
`possibly_sent`, the next attempt looks the batch up in Isometric before posting it again.
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from batches.models import (
    AttemptOutcome,
    ProductionBatch,
    SyncAttempt,
    SyncStatus,
    is_isometric_id,
)
from isometric.errors import (
    AuthenticationFailed,
    Conflict,
    IsometricError,
    MalformedResponse,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)
from isometric.models import ProductionBatch as RemoteBatch
from portal.models import Clients, ConnectionStatus, IsometricAccount

log = logging.getLogger(__name__)

# Isometric's Retry-After is honoured up to this many seconds; past it, the backoff rules.
MAX_RETRY_AFTER = 3600.0
LOST_ATTEMPT = (
    "The previous attempt did not finish within its lease (the worker stopped or lost touch); "
    "trying again, looking the batch up in Isometric first"
)
PAUSED_MESSAGE = (
    "Isometric refused this account's credentials, so sending is paused until an admin "
    "updates them."
)


@dataclass(frozen=True)
class Claim:
    batch: ProductionBatch
    token: str
    # An earlier attempt may have reached Isometric: look the batch up before posting it.
    look_up_first: bool


def due_batches(now: datetime) -> QuerySet[ProductionBatch]:
    """Batches to push now: pending ones whose time has come and syncing ones whose worker's
    lease ran out (only unsettled batches have a next attempt), in accounts whose credentials
    Isometric has not refused."""
    return (
        ProductionBatch.objects.filter(next_attempt_at__lte=now)
        .exclude(account__connection_status=ConnectionStatus.REJECTED)
        .order_by("next_attempt_at")
    )


def claim_due(limit: int) -> list[Claim]:
    """Take up to `limit` due batches for this worker: they become `syncing` under a lease.

    On PostgreSQL, SKIP LOCKED lets workers claim side by side without waiting on each other;
    SQLite's IMMEDIATE transactions let one writer in at a time. The UPDATE repeats the
    condition, so a row changed since it was read is not taken.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        due = list(
            due_batches(now)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "possibly_sent", "sync_status")[:limit]
        )
        if not due:
            return []
        rows = {pk: possibly_sent for pk, possibly_sent, _ in due}
        due_batches(now).filter(pk__in=rows).update(
            sync_status=SyncStatus.SYNCING,
            next_attempt_at=now + timedelta(seconds=settings.SYNC_LEASE),
            claim_token=token,
            possibly_sent=True,
            updated_at=now,
        )
        _record_lost_attempts([pk for pk, _, status in due if status == SyncStatus.SYNCING], now)
    claimed = (
        ProductionBatch.objects.select_related("account", "facility")
        .prefetch_related("feedstock_types")
        .filter(claim_token=token)
    )
    return [Claim(batch, token, rows[batch.pk]) for batch in claimed]


def _record_lost_attempts(pks: list[int], now: datetime) -> None:
    """Batches whose worker's lease ran out: that attempt ended unseen (the worker was killed
    or lost its database), so it is one that failed, in the batch's history like any other."""
    if not pks:
        return
    ProductionBatch.objects.filter(pk__in=pks).update(
        sync_attempts=F("sync_attempts") + 1, failing_since=Coalesce("failing_since", Value(now))
    )
    SyncAttempt.objects.bulk_create(
        SyncAttempt(
            batch_id=pk,
            started_at=now,
            duration_ms=0,
            outcome=AttemptOutcome.RETRY,
            message=LOST_ATTEMPT,
        )
        for pk in pks
    )


def release(claim: Claim) -> None:
    """Give back a claimed batch that was not tried (the worker is stopping): due at once."""
    ProductionBatch.objects.filter(
        pk=claim.batch.pk, claim_token=claim.token, sync_status=SyncStatus.SYNCING
    ).update(
        sync_status=SyncStatus.PENDING,
        claim_token="",
        next_attempt_at=timezone.now(),
        possibly_sent=claim.look_up_first,
        updated_at=timezone.now(),
    )


class _Push:
    """One attempt at one batch, remembering whether Isometric may now hold it."""

    def __init__(self, batch: ProductionBatch, look_up_first: bool) -> None:
        self.batch = batch
        self.possibly_sent = look_up_first
        self.posting = False

    def send(self, clients: "Clients") -> tuple[RemoteBatch, bool]:
        """Isometric's copy of the batch, and whether it was there already."""
        remote, already_there = self._send(clients)
        if not is_isometric_id(remote.id):
            raise MalformedResponse(
                f"Isometric's id for the batch is not an id: {remote.id[:40]!r}"
            )
        return remote, already_there

    def _send(self, clients: "Clients") -> tuple[RemoteBatch, bool]:
        self.client = clients.get(self.batch.account)  # UnreadableCredentials: paused
        reference = self.batch.supplier_reference_id
        if self.possibly_sent:
            found = self.client.find_production_batch(reference)
            if found is not None:
                return found, True
            self.possibly_sent = False
        self.posting = self.possibly_sent = True
        try:
            return self.client.create_production_batch(self.batch.to_api()), False
        except Conflict:
            self.posting = False
            found = self.client.find_production_batch(reference)
            if found is None:
                raise IsometricError(
                    "Isometric says a batch with this supplier reference exists, "
                    "but does not list one"
                ) from None
            return found, True

    def failed(self, exc: IsometricError) -> None:
        """Clear possibly_sent when Isometric's answer to our POST shows it stored nothing."""
        if self.posting and not _may_have_stored(exc):
            self.possibly_sent = False


def _may_have_stored(exc: IsometricError) -> bool:
    if isinstance(exc, TransportError):
        return exc.may_have_reached_server
    if isinstance(exc, ServerError):
        return exc.status != 503  # 503 turns a request away; a 500 may come after the insert
    return not isinstance(exc, ValidationFailed | AuthenticationFailed | RateLimited)


def push(claim: Claim, clients: Clients) -> AttemptOutcome:
    """Send one claimed batch and record what came of it."""
    attempt = send(claim, clients)
    attempt.save()
    return attempt.outcome


def send(claim: Claim, clients: Clients) -> "Attempt":
    """Send one claimed batch and conclude what came of it, writing nothing yet (a worker's
    pushers send while another thread saves): Attempt.save() records it."""
    batch = claim.batch
    started_at, started = timezone.now(), time.monotonic()
    sending = _Push(batch, claim.look_up_first)
    try:
        remote, already_there = sending.send(clients)
    except IsometricError as exc:
        sending.failed(exc)
        attempt = Attempt(claim, started_at, started, exc.status)
        _conclude_failure(attempt, exc, sending.possibly_sent)
        return attempt
    except Exception as exc:
        # Whatever else goes wrong is an attempt that failed, not a batch left "syncing".
        log.exception("push of batch %s failed unexpectedly", batch.pk)
        attempt = Attempt(claim, started_at, started, None)
        _conclude_failure(attempt, unexpected(exc), sending.possibly_sent)
        return attempt
    attempt = Attempt(claim, started_at, started, 200)
    attempt.conclude(
        AttemptOutcome.ADOPTED if already_there else AttemptOutcome.CREATED,
        _synced_message(remote, already_there),
        sync_status=SyncStatus.SYNCED,
        remote_id=remote.id,
        uploaded_at=remote.uploaded_at or started_at,
        display_name=(remote.display_name or batch.display_name)[:100],
        sync_attempts=F("sync_attempts") + 1,
        failing_since=None,
        possibly_sent=False,
        next_attempt_at=None,
        last_error="",
        rejection_errors=[],
        deleted_in_isometric_at=None,
    )
    return attempt


def unexpected(exc: Exception) -> IsometricError:
    """An error of the portal's own while talking to Isometric, named without its details
    (which may hold anything): the log has the traceback."""
    return IsometricError(f"Unexpected error in the portal ({type(exc).__name__}); see its log")


def _synced_message(remote: RemoteBatch, already_there: bool) -> str:
    if already_there:
        return f"Isometric already had it as {remote.id}: adopted, not sent again"
    return f"Created as {remote.id}"


def _conclude_failure(attempt: "Attempt", exc: IsometricError, possibly_sent: bool) -> None:
    message = str(exc)
    if isinstance(exc, AuthenticationFailed):
        attempt.conclude(
            AttemptOutcome.PAUSED,
            message,
            sync_status=SyncStatus.PENDING,
            next_attempt_at=timezone.now(),
            possibly_sent=possibly_sent,
            last_error=PAUSED_MESSAGE,
        )
        return
    if isinstance(exc, ValidationFailed):
        attempt.conclude(
            AttemptOutcome.REJECTED,
            message,
            sync_status=SyncStatus.REJECTED,
            sync_attempts=F("sync_attempts") + 1,
            possibly_sent=False,
            next_attempt_at=None,
            last_error="Isometric refused this batch. Correct the fields marked and save it.",
            rejection_errors=[[ProductionBatch.field_of(e.loc), e.msg] for e in exc.field_errors],
        )
        return
    _conclude_retry(attempt, message, possibly_sent, getattr(exc, "retry_after", None))


def _conclude_retry(
    attempt: "Attempt", message: str, possibly_sent: bool, retry_after: float | None = None
) -> None:
    """Try again after a backoff, or give up once the batch has kept failing for
    SYNC_GIVE_UP_AFTER: a time, not a count, so an outage fails nothing."""
    now = timezone.now()
    failing_since = attempt.batch.failing_since or attempt.started_at
    if now - failing_since >= timedelta(seconds=settings.SYNC_GIVE_UP_AFTER):
        attempt.conclude(
            AttemptOutcome.FAILED,
            message,
            sync_status=SyncStatus.FAILED,
            sync_attempts=F("sync_attempts") + 1,
            failing_since=failing_since,
            possibly_sent=possibly_sent,
            next_attempt_at=None,
            last_error=(
                f"Gave up after failing since {timezone.localtime(failing_since):%-d %b %Y %H:%M}."
                f" The last: {message}"
            ),
        )
        return
    delay = backoff(attempt.batch.sync_attempts + 1, retry_after)
    attempt.conclude(
        AttemptOutcome.RETRY,
        f"{message}; next attempt in {delay:.0f} s",
        sync_status=SyncStatus.PENDING,
        sync_attempts=F("sync_attempts") + 1,
        failing_since=failing_since,
        possibly_sent=possibly_sent,
        next_attempt_at=now + timedelta(seconds=delay),
        last_error=message,
    )


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before attempt number `attempts + 1`: exponential, capped, jittered (so batches
    that failed together do not come back together), and never sooner than Retry-After."""
    doublings = min(attempts - 1, 32)  # past that the cap has long been reached
    ceiling = min(settings.SYNC_BACKOFF_CAP, settings.SYNC_BACKOFF_BASE * 2**doublings)
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, min(retry_after or 0.0, MAX_RETRY_AFTER))


def _pause_account(account: IsometricAccount | None, message: str) -> None:
    """Mark the account refused, unless its credentials changed since this push began."""
    if account is None:
        return
    IsometricAccount.objects.filter(pk=account.pk, updated_at=account.updated_at).update(
        connection_status=ConnectionStatus.REJECTED,
        connection_message=f"Isometric refused the credentials while sending a batch: {message}",
        checked_at=timezone.now(),
    )


class Attempt:
    """One push of a claimed batch: what came of it, then (save) the batch's new state, if the
    worker's claim on it still holds, and its history line either way."""

    outcome: AttemptOutcome

    def __init__(
        self, claim: Claim, started_at: datetime, started: float, http_status: int | None
    ) -> None:
        self.claim = claim
        self.batch = claim.batch
        self.started_at = started_at
        self.duration_ms = round((time.monotonic() - started) * 1000)
        self.http_status = http_status

    def conclude(self, outcome: AttemptOutcome, message: str, **changes: Any) -> None:
        self.outcome, self.message, self.changes = outcome, message, changes

    @transaction.atomic
    def _apply(self) -> int:
        held = ProductionBatch.objects.filter(
            pk=self.batch.pk, claim_token=self.claim.token, sync_status=SyncStatus.SYNCING
        ).update(claim_token="", updated_at=timezone.now(), **self.changes)
        SyncAttempt.objects.create(
            batch_id=self.batch.pk,
            started_at=self.started_at,
            duration_ms=self.duration_ms,
            outcome=self.outcome,
            http_status=self.http_status,
            message=self.message[:500],
        )
        return held

    def _unstorable(self, exc: DatabaseError) -> str:
        remote_id = self.changes.get("remote_id")
        holder = (
            ProductionBatch.objects.filter(account_id=self.batch.account_id, remote_id=remote_id)
            .exclude(pk=self.batch.pk)
            .first()
        )
        if isinstance(exc, IntegrityError) and holder is not None:
            return (
                f"Isometric answered that this batch is {remote_id}, which the batch "
                f"{holder.supplier_reference_id} here already is"
            )
        return f"Isometric's answer could not be stored ({type(exc).__name__})"

    def save(self) -> None:
        if self.outcome == AttemptOutcome.PAUSED:
            _pause_account(self.batch.account, self.message)
        try:
            held = self._apply()
        except DatabaseError as exc:
            # What Isometric answered cannot be stored (an id another batch holds, a value
            # out of range): the batch is tried again, looked up first, rather than stuck.
            _conclude_retry(self, self._unstorable(exc), possibly_sent=True)
            held = self._apply()
        lost = "" if held else " (its lease had run out: the outcome was not applied)"
        log.info(
            "batch %s %s: %s [%s, %d ms] %s%s",
            self.batch.pk,
            self.batch.supplier_reference_id,
            self.outcome.label,
            self.http_status or "-",
            self.duration_ms,
            self.message,
            lost,
        )
